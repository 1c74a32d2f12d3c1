//! The filter language's parser: any text either parses or is an `InvalidFilter`, and
//! what parses prints back to text that parses to the same expression.
#![no_main]

use dala_dataset::Expr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(expr) = Expr::parse(text) {
        let printed = expr.to_string();
        match Expr::parse(&printed) {
            Ok(again) => assert_eq!(again, expr, "{text:?} printed as {printed:?}"),
            Err(e) => panic!("{text:?} printed as {printed:?}, which does not parse: {e}"),
        }
    }
});
