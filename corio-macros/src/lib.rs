//! The macros of [corio](https://docs.rs/corio): `#[corio::main]`,
//! `#[corio::test]`, `select!`, `join!` and `try_join!`.
//!
//! Use them through corio (its default feature `macros`), where they are
//! documented with examples: the expansions name `::corio`.
//!
//! How it works: each macro parses its input with `syn` into a small
//! description (`Options` for the attributes, branches for `select!`),
//! checks it, and emits code that calls corio's public API (the runtime
//! `Builder`) and a few hidden helpers (`corio::__private`). Every misuse
//! is a `syn::Error` at the offending tokens that says what to write.

mod entry;
mod join;
mod select;

use proc_macro::TokenStream;

/// Runs `async fn main` on a corio runtime. See `corio::main`.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    entry::main(args.into(), item.clone())
        .unwrap_or_else(|e| entry::with_error(item, e))
        .into()
}

/// Runs an `async fn` test on a corio runtime. See `corio::test`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    entry::test(args.into(), item.clone())
        .unwrap_or_else(|e| entry::with_error(item, e))
        .into()
}

/// Waits for the first of several futures. See `corio::select!`.
#[proc_macro]
pub fn select(input: TokenStream) -> TokenStream {
    select::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Waits for all of several futures. See `corio::join!`.
#[proc_macro]
pub fn join(input: TokenStream) -> TokenStream {
    join::expand(input.into(), false)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Waits for all of several fallible futures, or the first error. See
/// `corio::try_join!`.
#[proc_macro]
pub fn try_join(input: TokenStream) -> TokenStream {
    join::expand(input.into(), true)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
