//! `join!` and `try_join!`: wait for every future (or, for `try_join!`,
//! the first error).
//!
//! How it works: the futures are evaluated in order and pinned on the
//! stack; one `poll_fn` polls each that has not finished (in order) and
//! keeps its output in an `Option`, until all have. `try_join!` returns as
//! soon as one yields `Err`, dropping the others.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, Token};

pub(crate) fn expand(input: TokenStream, fallible: bool) -> syn::Result<TokenStream> {
    let exprs: Vec<Expr> = Punctuated::<Expr, Token![,]>::parse_terminated
        .parse2(input)?
        .into_iter()
        .collect();
    if exprs.is_empty() {
        return Ok(if fallible {
            quote!(::core::result::Result::<(), _>::Ok(()))
        } else {
            quote!({})
        });
    }
    let site = Span::mixed_site();
    let futs: Vec<_> = (0..exprs.len())
        .map(|i| syn::Ident::new(&format!("__corio_f{i}"), site))
        .collect();
    let outs: Vec<_> = (0..exprs.len())
        .map(|i| syn::Ident::new(&format!("__corio_o{i}"), site))
        .collect();
    let polls = futs.iter().zip(&outs).map(|(f, o)| {
        let ready = if fallible {
            quote! {
                ::core::task::Poll::Ready(::core::result::Result::Ok(__v)) => #o = ::core::option::Option::Some(__v),
                ::core::task::Poll::Ready(::core::result::Result::Err(__e)) => {
                    return ::core::task::Poll::Ready(::core::result::Result::Err(__e));
                }
            }
        } else {
            quote!(::core::task::Poll::Ready(__v) => #o = ::core::option::Option::Some(__v),)
        };
        quote! {
            if #o.is_none() {
                match ::core::future::Future::poll(#f.as_mut(), __cx) {
                    #ready
                    ::core::task::Poll::Pending => __done = false,
                }
            }
        }
    });
    let done = if fallible {
        quote!(::core::result::Result::Ok(()))
    } else {
        quote!(())
    };
    let tuple = quote!((#(#outs.unwrap(),)*));
    let finish = if fallible {
        quote!(__corio_res.map(|()| #tuple))
    } else {
        quote!({
            let () = __corio_res;
            #tuple
        })
    };
    Ok(quote! {{
        #(
            let mut #futs = ::core::pin::pin!(::core::future::IntoFuture::into_future(#exprs));
            let mut #outs = ::core::option::Option::None;
        )*
        let __corio_res = ::core::future::poll_fn(|__cx| {
            let mut __done = true;
            #(#polls)*
            if __done {
                ::core::task::Poll::Ready(#done)
            } else {
                ::core::task::Poll::Pending
            }
        })
        .await;
        #finish
    }})
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::expand;

    #[test]
    fn expands_any_number_of_futures() {
        assert!(expand(quote!(), false).is_ok());
        let out = expand(quote!(a, b, c,), true).unwrap().to_string();
        assert!(out.contains("Err"), "{out}");
        assert!(expand(quote!(a b), false).is_err());
    }
}
