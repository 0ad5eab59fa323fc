//! Property: printing any filter the parser can produce and parsing it back gives the same
//! AST; and the parser never panics on arbitrary input, with the same round trip whenever it
//! accepts something.

use idsync_core::filter::parse;
use idsync_core::{CompareOp, Filter, JsonPointer};
use proptest::prelude::*;
use serde_json::{Number, Value};

/// Pointers the language can express: tokens without white space, parentheses or quotes.
/// `~`, `/` and `!` inside tokens exercise the escapes; a lone empty token would print as the
/// root pointer `/`, so it is not generated.
fn pointer() -> impl Strategy<Value = JsonPointer> {
    prop::collection::vec("[a-zA-Z0-9_~/!.é😀-]{0,6}", 0..4)
        .prop_filter("a lone empty token prints as the root", |t| {
            t != &[String::new()]
        })
        .prop_map(JsonPointer::from_tokens)
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn extended_op() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_-]{0,5}".prop_filter("not a core keyword", |s| {
        CompareOp::from_name(s).is_none() && !matches!(s.as_str(), "pr" | "and" | "or")
    })
}

fn leaf() -> impl Strategy<Value = Filter> {
    prop_oneof![
        Just(Filter::True),
        Just(Filter::False),
        (
            pointer(),
            prop::sample::select(CompareOp::ALL.to_vec()),
            value()
        )
            .prop_map(|(field, op, value)| Filter::Compare { field, op, value }),
        pointer().prop_map(|field| Filter::Present { field }),
        (pointer(), extended_op(), value()).prop_map(|(field, op, value)| Filter::Extended {
            field,
            op,
            value
        }),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..5).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 2..5).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn print_then_parse_gives_the_same_ast(f in filter()) {
        let printed = f.to_string();
        prop_assert_eq!(parse(&printed), Ok(f), "printed as {}", printed);
    }

    #[test]
    fn printing_is_a_fixed_point(f in filter()) {
        let printed = f.to_string();
        let again = parse(&printed).map(|g| g.to_string());
        prop_assert_eq!(again, Ok(printed));
    }

    /// Arbitrary text built from the language's own pieces, so that many inputs parse.
    #[test]
    fn parser_never_panics_and_accepted_input_round_trips(
        pieces in prop::collection::vec(prop_oneof![
            Just(" "), Just("("), Just(")"), Just("!"), Just("and"), Just("or"), Just("pr"),
            Just("eq"), Just("co"), Just("ne"), Just("true"), Just("false"), Just("a"),
            Just("/b~1c"), Just("~"), Just("\""), Just("'"), Just("\\"), Just("\\u"),
            Just("d83d"), Just("1"), Just("-2.5e3"), Just("é"), Just("\t"),
        ], 0..30)
    ) {
        let input: String = pieces.concat();
        if let Ok(f) = parse(&input) {
            prop_assert_eq!(parse(&f.to_string()), Ok(f), "input {:?}", input);
        }
    }

    #[test]
    fn parser_never_panics_on_any_string(input in any::<String>()) {
        if let Ok(f) = parse(&input) {
            prop_assert_eq!(parse(&f.to_string()), Ok(f), "input {:?}", input);
        }
    }
}
