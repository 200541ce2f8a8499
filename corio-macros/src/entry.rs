//! `#[corio::main]` and `#[corio::test]`: an `async fn` run on a runtime.
//!
//! How it works: the options are parsed into [`Options`]; the function's
//! body becomes an `async move` block run by `Runtime::block_on` (or, with
//! `shards = N`, by `Builder::run` on every shard, their outputs combined by
//! `corio::__private::ShardsOutput`). `#[corio::test(both_drivers)]` emits a
//! module with a `uring` and a `poll` test running the same body, as
//! corio's own test suite does.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, Meta, Token};

const MAIN_OPTIONS: &str = "`shards = N`, `driver = \"poll\" | \"uring\" | \"auto\"` or `pin_cpus`";
const TEST_OPTIONS: &str = "`both_drivers` or `driver = \"poll\" | \"uring\" | \"auto\"`";

/// The options of either attribute.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Options {
    pub(crate) shards: Option<usize>,
    pub(crate) driver: Option<String>,
    pub(crate) pin_cpus: bool,
    pub(crate) both_drivers: bool,
}

fn err(span: impl Spanned, msg: impl std::fmt::Display) -> syn::Error {
    syn::Error::new(span.span(), msg)
}

/// Parses `key = value, flag, ...` for `main` (`is_test` false) or `test`.
pub(crate) fn parse_options(args: TokenStream, is_test: bool) -> syn::Result<Options> {
    let what = if is_test {
        "corio::test"
    } else {
        "corio::main"
    };
    let expected = if is_test { TEST_OPTIONS } else { MAIN_OPTIONS };
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut o = Options::default();
    let mut seen = Vec::new();
    for meta in metas {
        let name = meta
            .path()
            .get_ident()
            .map(|i| i.to_string())
            .ok_or_else(|| {
                err(
                    meta.path(),
                    format!("unknown option for #[{what}]: write {expected}"),
                )
            })?;
        if seen.contains(&name) {
            return Err(err(meta.path(), format!("option `{name}` is given twice")));
        }
        seen.push(name.clone());
        let value = |what: &str| match &meta {
            Meta::NameValue(nv) => Ok(nv.value.clone()),
            _ => Err(err(&meta, format!("write `{name} = {what}`"))),
        };
        let flag = || match &meta {
            Meta::Path(_) => Ok(true),
            _ => Err(err(
                &meta,
                format!("`{name}` takes no value: write `{name}`"),
            )),
        };
        match name.as_str() {
            "shards" if !is_test => {
                let v = value("N")?;
                let n = match &v {
                    Expr::Lit(ExprLit {
                        lit: Lit::Int(i), ..
                    }) => i.base10_parse::<usize>().ok().filter(|&n| n > 0),
                    _ => None,
                };
                o.shards = Some(n.ok_or_else(|| {
                    err(&v, "`shards` takes a positive integer, e.g. `shards = 4`")
                })?);
            }
            "driver" => {
                let v = value("\"poll\"")?;
                let s = match &v {
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) => Some(s.value()),
                    _ => None,
                };
                match s.as_deref() {
                    Some("poll" | "uring" | "auto") => o.driver = s,
                    _ => {
                        return Err(err(
                            &v,
                            "`driver` is \"poll\", \"uring\" or \"auto\", e.g. `driver = \"poll\"`",
                        ));
                    }
                }
            }
            "pin_cpus" if !is_test => o.pin_cpus = flag()?,
            "both_drivers" if is_test => o.both_drivers = flag()?,
            _ => {
                return Err(err(
                    meta.path(),
                    format!("unknown option `{name}` for #[{what}]: write {expected}"),
                ));
            }
        }
    }
    if o.pin_cpus && o.shards.is_none() {
        return Err(err(
            Span::call_site(),
            "`pin_cpus` pins the shards' threads: add `shards = N`",
        ));
    }
    if o.both_drivers && o.driver.is_some() {
        return Err(err(
            Span::call_site(),
            "`both_drivers` runs the test on each driver: drop `driver = ...`",
        ));
    }
    Ok(o)
}

/// Checks the function is `async`, takes no arguments and is not generic.
fn check_fn(f: &ItemFn, what: &str) -> syn::Result<()> {
    let name = &f.sig.ident;
    if f.sig.asyncness.is_none() {
        return Err(err(
            f.sig.fn_token,
            format!("#[corio::{what}] needs an async function: write `async fn {name}()`"),
        ));
    }
    if !f.sig.inputs.is_empty() {
        return Err(err(
            &f.sig.inputs,
            format!("#[corio::{what}] runs `{name}` with no arguments: remove them"),
        ));
    }
    if !f.sig.generics.params.is_empty() || f.sig.generics.where_clause.is_some() {
        return Err(err(
            &f.sig.generics,
            format!("#[corio::{what}] cannot run a generic function"),
        ));
    }
    Ok(())
}

fn driver_tokens(driver: &str) -> TokenStream {
    match driver {
        "poll" => quote!(::corio::DriverKind::Poll),
        "uring" => quote!(::corio::DriverKind::Uring),
        _ => quote!(::corio::DriverKind::Auto),
    }
}

/// The error, plus the function as a plain `fn` whose body is never run:
/// the one error the user must fix is then the only one reported (no
/// "`main` not found" or "`main` cannot be async" after it).
pub(crate) fn with_error(item: TokenStream, e: syn::Error) -> TokenStream {
    let error = e.into_compile_error();
    match syn::parse2::<ItemFn>(item) {
        Ok(mut f) => {
            f.sig.asyncness = None;
            f.sig.inputs.clear();
            *f.block = syn::parse_quote!({ ::core::unreachable!() });
            quote!(#error #f)
        }
        Err(_) => error,
    }
}

/// `#[corio::main]`.
pub(crate) fn main(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let o = parse_options(args, false)?;
    let f: ItemFn = syn::parse2(item)?;
    check_fn(&f, "main")?;
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = f;
    sig.asyncness = None;
    let mut builder = quote!(::corio::Builder::new());
    if let Some(d) = &o.driver {
        let d = driver_tokens(d);
        builder = quote!(#builder.driver(#d));
    }
    let body = match o.shards {
        None => quote! {
            ::corio::__private::block_on(#builder, async move #block)
        },
        Some(n) => {
            let pin = o.pin_cpus;
            quote! {
                ::corio::__private::run_shards(
                    #builder.shards(#n).pin_cpus(#pin),
                    move |_shard| async move #block,
                )
            }
        }
    };
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #body
        }
    })
}

/// `#[corio::test]`.
pub(crate) fn test(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let o = parse_options(args, true)?;
    let f: ItemFn = syn::parse2(item)?;
    check_fn(&f, "test")?;
    if let Some(a) = f.attrs.iter().find(|a| a.path().is_ident("test")) {
        return Err(err(
            a,
            "#[corio::test] already makes a test: remove this #[test]",
        ));
    }
    let ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = f;
    sig.asyncness = None;
    let ret = &sig.output;
    if !o.both_drivers {
        let driver = driver_tokens(o.driver.as_deref().unwrap_or("auto"));
        return Ok(quote! {
            #[::core::prelude::v1::test]
            #(#attrs)*
            #vis #sig {
                ::corio::__private::test_runtime(#driver).block_on(async move #block)
            }
        });
    }
    let name = &sig.ident;
    let span = sig.ident.span();
    let variant = |v: &str, kind: TokenStream| {
        let id = syn::Ident::new(v, span);
        quote_spanned! {span=>
            #[::core::prelude::v1::test]
            #(#attrs)*
            fn #id() #ret {
                ::corio::__private::test_runtime(#kind).block_on(body())
            }
        }
    };
    let uring = variant("uring", quote!(::corio::DriverKind::Uring));
    let poll = variant("poll", quote!(::corio::DriverKind::Poll));
    let body_fn = quote! {
        async fn body() #ret #block
    };
    Ok(quote! {
        #vis mod #name {
            #[allow(unused_imports)]
            use super::*;

            #body_fn

            #uring
            #poll
        }
    }
    .into_token_stream())
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::{Options, main, parse_options, test};

    fn main_error(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> String {
        main(args, item).unwrap_err().to_string()
    }

    #[test]
    fn options_parse() {
        let o = parse_options(quote!(shards = 4, driver = "poll", pin_cpus), false).unwrap();
        assert_eq!(
            o,
            Options {
                shards: Some(4),
                driver: Some("poll".into()),
                pin_cpus: true,
                both_drivers: false
            }
        );
        let o = parse_options(quote!(both_drivers), true).unwrap();
        assert!(o.both_drivers);
        assert_eq!(parse_options(quote!(), false).unwrap(), Options::default());
    }

    #[test]
    fn misuse_says_what_to_write() {
        let item = quote!(
            async fn main() {}
        );
        let e = main_error(quote!(threads = 2), item.clone());
        assert!(
            e.contains("unknown option `threads`") && e.contains("`shards = N`"),
            "{e}"
        );
        let e = main_error(quote!(shards = "four"), item.clone());
        assert!(e.contains("positive integer, e.g. `shards = 4`"), "{e}");
        let e = main_error(quote!(shards = 0), item.clone());
        assert!(e.contains("positive integer"), "{e}");
        let e = main_error(quote!(driver = "epoll"), item.clone());
        assert!(e.contains("\"poll\", \"uring\" or \"auto\""), "{e}");
        let e = main_error(quote!(driver), item.clone());
        assert!(e.contains("write `driver = \"poll\"`"), "{e}");
        let e = main_error(quote!(pin_cpus), item.clone());
        assert!(e.contains("add `shards = N`"), "{e}");
        let e = main_error(quote!(pin_cpus = true, shards = 2), item.clone());
        assert!(e.contains("takes no value"), "{e}");
        let e = main_error(quote!(shards = 2, shards = 3), item.clone());
        assert!(e.contains("twice"), "{e}");
        let e = main_error(
            quote!(),
            quote!(
                fn main() {}
            ),
        );
        assert!(e.contains("write `async fn main()`"), "{e}");
        let e = main_error(
            quote!(),
            quote!(
                async fn main(x: u32) {}
            ),
        );
        assert!(e.contains("no arguments"), "{e}");
        let e = test(
            quote!(shards = 2),
            quote!(
                async fn t() {}
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("unknown option `shards`") && e.contains("both_drivers"),
            "{e}"
        );
        let e = test(
            quote!(),
            quote!(
                fn t() {}
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("write `async fn t()`"), "{e}");
        let e = test(
            quote!(both_drivers, driver = "poll"),
            quote!(
                async fn t() {}
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("drop `driver"), "{e}");
        let e = test(
            quote!(),
            quote!(
                #[test]
                async fn t() {}
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("remove this #[test]"), "{e}");
    }

    #[test]
    fn expansions_name_the_runtime() {
        let out = main(
            quote!(shards = 2),
            quote!(
                async fn main() {}
            ),
        )
        .unwrap()
        .to_string();
        assert!(out.contains("run_shards"), "{out}");
        let out = main(
            quote!(),
            quote!(
                async fn main() -> u8 {
                    1
                }
            ),
        )
        .unwrap()
        .to_string();
        assert!(
            out.contains("block_on") && !out.contains("async fn"),
            "{out}"
        );
        let out = test(
            quote!(both_drivers),
            quote!(
                async fn t() {}
            ),
        )
        .unwrap()
        .to_string();
        assert!(
            out.contains("mod t") && out.contains("fn uring") && out.contains("fn poll"),
            "{out}"
        );
    }
}
