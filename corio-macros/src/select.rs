//! `select!`: wait for the first of several futures whose output matches
//! its branch's pattern; run that branch.
//!
//! How it works: the branches are parsed (`pattern = future [, if
//! condition] => handler`, an optional `else => handler`, an optional
//! leading `biased;`). The expansion evaluates the conditions, then the
//! futures (pinned on the stack), then polls the enabled ones in one
//! `poll_fn`, starting from a random branch unless `biased`. A completed
//! future disables its branch; if its output does not match the pattern
//! the others are polled on. The matching output leaves the `poll_fn` as a
//! variant of a generated enum; the futures are dropped; then the output
//! is matched against the pattern again, binding its variables, and the
//! handler runs (outside any closure or loop of the macro's, so `return`,
//! `?`, `break` and `continue` in a handler act on the caller's code).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Pat, Token};

struct Branch {
    pat: Pat,
    fut: Expr,
    cond: Option<Expr>,
    handler: Expr,
}

struct Select {
    biased: bool,
    branches: Vec<Branch>,
    otherwise: Option<Expr>,
}

mod kw {
    syn::custom_keyword!(biased);
}

impl Parse for Select {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let biased = if input.peek(kw::biased) && input.peek2(Token![;]) {
            input.parse::<kw::biased>()?;
            input.parse::<Token![;]>()?;
            true
        } else {
            false
        };
        let mut branches = Vec::new();
        let mut otherwise = None;
        while !input.is_empty() {
            if input.peek(Token![else]) {
                let tok = input.parse::<Token![else]>()?;
                input.parse::<Token![=>]>()?;
                let handler = parse_handler(input)?;
                if otherwise.replace(handler).is_some() {
                    return Err(syn::Error::new(tok.span, "select! takes one `else` branch"));
                }
                continue;
            }
            let pat = Pat::parse_multi_with_leading_vert(input)?;
            if input.peek(Token![=>]) || !input.peek(Token![=]) {
                return Err(
                    input.error("expected `pattern = future => handler` (or `else => handler`)")
                );
            }
            input.parse::<Token![=]>()?;
            let fut = input.parse::<Expr>()?;
            let cond = if input.peek(Token![,]) && input.peek2(Token![if]) {
                input.parse::<Token![,]>()?;
                input.parse::<Token![if]>()?;
                Some(input.parse::<Expr>()?)
            } else {
                None
            };
            input.parse::<Token![=>]>()?;
            let handler = parse_handler(input)?;
            branches.push(Branch {
                pat,
                fut,
                cond,
                handler,
            });
        }
        if branches.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                "select! needs at least one `pattern = future => handler` branch",
            ));
        }
        if branches.len() > 64 {
            return Err(syn::Error::new(
                Span::call_site(),
                "select! takes at most 64 branches",
            ));
        }
        Ok(Select {
            biased,
            branches,
            otherwise,
        })
    }
}

/// A handler, as a `match` arm's body: a comma follows unless it is a block
/// (or the last one).
fn parse_handler(input: ParseStream<'_>) -> syn::Result<Expr> {
    let handler = input.parse::<Expr>()?;
    let is_block = matches!(
        handler,
        Expr::Block(_)
            | Expr::If(_)
            | Expr::Match(_)
            | Expr::Loop(_)
            | Expr::While(_)
            | Expr::ForLoop(_)
            | Expr::Unsafe(_)
    );
    if input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
    } else if !input.is_empty() && !is_block {
        return Err(input.error("expected `,` after a select! branch's handler"));
    }
    Ok(handler)
}

/// `pat` without `mut`, `ref` and `ref mut` on its bindings: the form used
/// to test an output through a reference before it is moved.
fn clean(pat: &Pat) -> Pat {
    let mut p = pat.clone();
    strip(&mut p);
    p
}

fn strip(p: &mut Pat) {
    match p {
        Pat::Ident(i) => {
            i.by_ref = None;
            i.mutability = None;
            if let Some((_, sub)) = &mut i.subpat {
                strip(sub);
            }
        }
        Pat::Or(o) => o.cases.iter_mut().for_each(strip),
        Pat::Paren(x) => strip(&mut x.pat),
        Pat::Reference(r) => strip(&mut r.pat),
        Pat::Slice(s) => s.elems.iter_mut().for_each(strip),
        Pat::Struct(s) => s.fields.iter_mut().for_each(|f| strip(&mut f.pat)),
        Pat::Tuple(t) => t.elems.iter_mut().for_each(strip),
        Pat::TupleStruct(t) => t.elems.iter_mut().for_each(strip),
        Pat::Type(t) => strip(&mut t.pat),
        _ => {}
    }
}

pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let s: Select = syn::parse2(input)?;
    let n = s.branches.len();
    let site = Span::mixed_site();
    let variants: Vec<_> = (0..n).map(|i| format_ident!("_{}", i)).collect();
    let params: Vec<_> = (0..n).map(|i| format_ident!("T{}", i)).collect();
    let futs: Vec<_> = (0..n)
        .map(|i| syn::Ident::new(&format!("__corio_f{i}"), site))
        .collect();
    let disabled = syn::Ident::new("__corio_disabled", site);
    let out = syn::Ident::new("__CorioOut", site);

    let conds = s.branches.iter().map(|b| match &b.cond {
        Some(c) => quote!(!(#c)),
        None => quote!(false),
    });
    let fut_exprs = s.branches.iter().map(|b| &b.fut);
    let polls = s.branches.iter().enumerate().map(|(i, b)| {
        let f = &futs[i];
        let v = &variants[i];
        let pat = clean(&b.pat);
        quote! {
            #i if !#disabled[#i] => {
                match ::core::future::Future::poll(#f.as_mut(), __cx) {
                    ::core::task::Poll::Ready(__v) => {
                        #disabled[#i] = true;
                        #[allow(unused_variables, unused_mut, unreachable_patterns)]
                        match &__v {
                            #pat => {}
                            _ => continue,
                        }
                        return ::core::task::Poll::Ready(#out::#v(__v));
                    }
                    ::core::task::Poll::Pending => __pending = true,
                }
            }
        }
    });
    let arms = s.branches.iter().enumerate().map(|(i, b)| {
        let v = &variants[i];
        let pat = &b.pat;
        let h = &b.handler;
        quote!(#out::#v(#pat) => #h,)
    });
    let otherwise = match &s.otherwise {
        Some(h) => quote!(#h),
        None => quote!(::core::panic!(
            "corio::select!: every branch is disabled and there is no `else` branch"
        )),
    };
    let start = if s.biased {
        quote!(0)
    } else {
        quote!(::corio::__private::select_start(#n))
    };
    Ok(quote! {{
        #[allow(non_camel_case_types, dead_code)]
        enum #out<#(#params),*> {
            #(#variants(#params),)*
            Disabled,
        }
        let __corio_output = {
            let mut #disabled: [bool; #n] = [#(#conds),*];
            #(
                let mut #futs = ::core::pin::pin!(::core::future::IntoFuture::into_future(#fut_exprs));
            )*
            let __corio_start: usize = #start;
            ::core::future::poll_fn(|__cx| {
                let mut __pending = false;
                for __k in 0..#n {
                    let mut __b: usize = __corio_start + __k;
                    if __b >= #n {
                        __b -= #n;
                    }
                    match __b {
                        #(#polls)*
                        _ => {}
                    }
                }
                if __pending {
                    ::core::task::Poll::Pending
                } else {
                    ::core::task::Poll::Ready(#out::Disabled)
                }
            })
            .await
        };
        #[allow(unreachable_patterns, unused_variables)]
        match __corio_output {
            #(#arms)*
            #out::Disabled => #otherwise,
            _ => ::core::unreachable!(),
        }
    }})
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::expand;

    fn error(input: proc_macro2::TokenStream) -> String {
        expand(input).unwrap_err().to_string()
    }

    #[test]
    fn parses_branches_conditions_else_and_biased() {
        let out = expand(quote! {
            biased;
            Some(mut x) = a => { x += 1; }
            y = b, if ready => y,
            else => 0,
        })
        .unwrap()
        .to_string();
        assert!(out.contains("Disabled"), "{out}");
        assert!(
            !out.contains("select_start"),
            "biased polls in order: {out}"
        );
        let out = expand(quote!(v = f => v)).unwrap().to_string();
        assert!(out.contains("select_start"), "{out}");
    }

    #[test]
    fn errors_say_what_to_write() {
        assert!(error(quote!()).contains("at least one"));
        let e = error(quote!(x => 1));
        assert!(e.contains("pattern = future => handler"), "{e}");
        assert!(error(quote!(x = a => 1 y = b => 2)).contains("expected `,`"));
        assert!(error(quote!(x = a => 1, else => 2, else => 3)).contains("one `else`"));
    }
}
