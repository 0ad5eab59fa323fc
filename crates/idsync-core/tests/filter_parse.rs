//! The filter parser against tables of valid expressions (with their AST) and invalid ones
//! (with the error position and message), plus the printer's canonical form.

use idsync_core::filter::{MAX_DEPTH, ParseError, parse};
use idsync_core::{CompareOp, Filter, JsonPointer};
use serde_json::{Value, json};

fn ptr(tokens: &[&str]) -> JsonPointer {
    JsonPointer::from_tokens(tokens.iter().copied())
}

fn cmp(field: &str, op: CompareOp, value: Value) -> Filter {
    Filter::Compare {
        field: JsonPointer::parse(field),
        op,
        value,
    }
}

fn pr(field: &str) -> Filter {
    Filter::Present {
        field: JsonPointer::parse(field),
    }
}

fn ext(field: &str, op: &str, value: Value) -> Filter {
    Filter::Extended {
        field: JsonPointer::parse(field),
        op: op.to_string(),
        value,
    }
}

fn not(f: Filter) -> Filter {
    Filter::Not(Box::new(f))
}

use CompareOp::{Co, Eq, Ge, Gt, Le, Lt, Sw};

#[test]
fn valid_expressions_parse_to_the_expected_ast() {
    let cases: Vec<(&str, Filter)> = vec![
        ("true", Filter::True),
        ("false", Filter::False),
        ("  true  ", Filter::True),
        (
            r#"userName eq "smith""#,
            cmp("userName", Eq, json!("smith")),
        ),
        (
            r#"/userName eq "smith""#,
            cmp("userName", Eq, json!("smith")),
        ),
        (
            "\tuserName \n eq\r\n  \"smith\"  ",
            cmp("userName", Eq, json!("smith")),
        ),
        (r#"a eq"x""#, cmp("a", Eq, json!("x"))),
        ("a co 'x'", cmp("a", Co, json!("x"))),
        (r#"a sw "Jen""#, cmp("a", Sw, json!("Jen"))),
        ("a lt 5", cmp("a", Lt, json!(5))),
        ("a le 5.5", cmp("a", Le, json!(5.5))),
        ("a gt -3", cmp("a", Gt, json!(-3))),
        ("a ge 1e3", cmp("a", Ge, json!(1000.0))),
        ("a eq 2.5E-2", cmp("a", Eq, json!(0.025))),
        ("a eq -0.5", cmp("a", Eq, json!(-0.5))),
        ("a eq 0", cmp("a", Eq, json!(0))),
        (
            "a eq 12345678901234567890",
            cmp("a", Eq, json!(12345678901234567890u64)),
        ),
        ("a eq true", cmp("a", Eq, json!(true))),
        ("a eq false", cmp("a", Eq, json!(false))),
        ("a pr", pr("a")),
        (r#"/a/b/c eq "x""#, cmp("/a/b/c", Eq, json!("x"))),
        (
            "/a~1b/c~0d pr",
            Filter::Present {
                field: ptr(&["a/b", "c~d"]),
            },
        ),
        (
            "a//b pr",
            Filter::Present {
                field: ptr(&["a", "", "b"]),
            },
        ),
        (
            "/roles/0 eq 1",
            Filter::Compare {
                field: ptr(&["roles", "0"]),
                op: Eq,
                value: json!(1),
            },
        ),
        (
            "/ pr",
            Filter::Present {
                field: JsonPointer::root(),
            },
        ),
        (
            "a!b pr",
            Filter::Present {
                field: ptr(&["a!b"]),
            },
        ),
        ("pr pr", pr("pr")),
        ("/and eq 1", cmp("and", Eq, json!(1))),
        (r#"a eq "say \"hi\"""#, cmp("a", Eq, json!("say \"hi\""))),
        (r"a eq 'it\'s'", cmp("a", Eq, json!("it's"))),
        (r#"a eq 'say "hi"'"#, cmp("a", Eq, json!("say \"hi\""))),
        (
            r#"a eq "\u00e9\n\t\\\/\b\f\r""#,
            cmp("a", Eq, json!("é\n\t\\/\u{8}\u{c}\r")),
        ),
        (r#"a eq "\ud83d\ude00""#, cmp("a", Eq, json!("😀"))),
        (
            r#"a eq "é 😀 with  spaces""#,
            cmp("a", Eq, json!("é 😀 with  spaces")),
        ),
        (r#"a eq """#, cmp("a", Eq, json!(""))),
        (r#"a ew "x""#, ext("a", "ew", json!("x"))),
        (r#"a ca "x""#, ext("a", "ca", json!("x"))),
        ("a ne 1", ext("a", "ne", json!(1))),
        (r#"a EQ "x""#, ext("a", "EQ", json!("x"))),
        ("a my-op_2 true", ext("a", "my-op_2", json!(true))),
        ("a pr and b pr", Filter::And(vec![pr("a"), pr("b")])),
        (
            "a pr and b pr and c pr",
            Filter::And(vec![pr("a"), pr("b"), pr("c")]),
        ),
        (
            "a pr or b pr or c pr",
            Filter::Or(vec![pr("a"), pr("b"), pr("c")]),
        ),
        (
            "a pr or b pr and c pr",
            Filter::Or(vec![pr("a"), Filter::And(vec![pr("b"), pr("c")])]),
        ),
        (
            "a pr and b pr or c pr",
            Filter::Or(vec![Filter::And(vec![pr("a"), pr("b")]), pr("c")]),
        ),
        (
            "(a pr or b pr) and c pr",
            Filter::And(vec![Filter::Or(vec![pr("a"), pr("b")]), pr("c")]),
        ),
        (
            "a pr and (b pr and c pr)",
            Filter::And(vec![pr("a"), Filter::And(vec![pr("b"), pr("c")])]),
        ),
        ("(a pr)and(b pr)", Filter::And(vec![pr("a"), pr("b")])),
        ("((a pr))", pr("a")),
        ("!(a pr)", not(pr("a"))),
        ("!a pr", not(pr("a"))),
        ("! a pr", not(pr("a"))),
        ("!true", not(Filter::True)),
        (
            "!a eq 1 and b pr",
            Filter::And(vec![not(cmp("a", Eq, json!(1))), pr("b")]),
        ),
        ("!(a pr or b pr)", not(Filter::Or(vec![pr("a"), pr("b")]))),
        ("!(!(a pr))", not(not(pr("a")))),
        (
            "true or false",
            Filter::Or(vec![Filter::True, Filter::False]),
        ),
        (
            r#"/source/equalsKey eq "foo" and /source/includesKey eq "1" and /source/json/pointer/key eq "foo""#,
            Filter::And(vec![
                cmp("/source/equalsKey", Eq, json!("foo")),
                cmp("/source/includesKey", Eq, json!("1")),
                cmp("/source/json/pointer/key", Eq, json!("foo")),
            ]),
        ),
    ];
    assert!(cases.len() >= 40);
    for (input, expected) in cases {
        match parse(input) {
            Ok(f) => assert_eq!(f, expected, "parsing {input:?}"),
            Err(e) => panic!("{input:?} should parse, got {e}"),
        }
    }
}

#[test]
fn invalid_expressions_report_position_and_expectation() {
    let deep_open = "(".repeat(MAX_DEPTH + 1);
    let deep = format!("{deep_open}a pr{}", ")".repeat(MAX_DEPTH + 1));
    let cases: Vec<(&str, usize, &str)> = vec![
        ("", 0, "expected a filter expression, found end of input"),
        ("   ", 3, "expected a filter expression, found end of input"),
        (
            "userName",
            8,
            r#"expected an operator after "userName", found end of input"#,
        ),
        (
            "userName eq",
            11,
            r#"expected a value after "eq", found end of input"#,
        ),
        (r#"a eq "abc"#, 5, "unterminated string starting at 5"),
        ("a eq 'abc\\'", 5, "unterminated string starting at 5"),
        (r#"é eq "x"#, 5, "unterminated string starting at 5"),
        (")", 0, "unexpected ')'"),
        ("a pr)", 4, "unexpected ')'"),
        ("a pr and (b pr or )", 18, "unexpected ')'"),
        (
            "(a pr",
            5,
            "expected ')' to close '(' at 0, found end of input",
        ),
        (
            "(a pr b pr)",
            6,
            r#"expected 'and', 'or' or ')' to close '(' at 0, found "b""#,
        ),
        (
            "a pr b pr",
            5,
            r#"trailing input: expected 'and', 'or' or end of input, found "b""#,
        ),
        (
            "a pr (b pr)",
            5,
            "trailing input: expected 'and', 'or' or end of input, found '('",
        ),
        (
            r#"a eq "x" "y""#,
            9,
            "trailing input: expected 'and', 'or' or end of input, found a quoted string",
        ),
        (
            "a pr AND b pr",
            5,
            r#"trailing input: expected 'and', 'or' or end of input, found "AND""#,
        ),
        (
            "a pr and",
            8,
            "expected a filter expression, found end of input",
        ),
        ("or a pr", 0, r#"expected a filter expression, found "or""#),
        (
            "a and b",
            2,
            r#"expected an operator after "a", found "and""#,
        ),
        (
            "TRUE",
            4,
            r#"expected an operator after "TRUE", found end of input"#,
        ),
        (
            r#"a = "x""#,
            2,
            r#"expected an operator after "a", found "=" (operators are eq, co, sw, lt, le, gt, ge, pr or an extended operator name)"#,
        ),
        (
            r#""a" eq 1"#,
            0,
            "expected a filter expression, found a quoted string (a field is written as a JSON pointer)",
        ),
        (
            "a eq null",
            5,
            "null is not a filter value (values are strings, numbers and booleans); to match an \
             absent or null field write !(field pr)",
        ),
        (
            "a eq abc",
            5,
            r#"expected a value after "eq" (a quoted string, a number, true or false), found "abc""#,
        ),
        ("a eq (1)", 5, r#"expected a value after "eq", found '('"#),
        ("a eq 01", 5, r#"invalid number "01""#),
        ("a eq 1.", 5, r#"invalid number "1.""#),
        ("a eq 1e400", 5, r#"invalid number "1e400""#),
        ("a eq +1", 5, r#"invalid number "+1""#),
        (
            r#"a eq "\x""#,
            6,
            r#"invalid escape '\x' (JSON escapes: \" \\ \/ \b \f \n \r \t \uXXXX)"#,
        ),
        (
            r#"a eq "\u12""#,
            6,
            r"\u must be followed by four hex digits",
        ),
        (r#"a eq "\ud800""#, 6, r"unpaired surrogate in \u escape"),
        (r#"a eq "\udc00""#, 6, r"unpaired surrogate in \u escape"),
        (
            "!!a pr",
            1,
            "unexpected '!': '!' applies to one expression; write !(!(...))",
        ),
        (
            "! ",
            2,
            "expected a filter expression after '!', found end of input",
        ),
        (
            "a/~2 pr",
            2,
            r#"invalid escape in JSON pointer "a/~2": '~' must be followed by 0 or 1"#,
        ),
        (
            "a~ pr",
            1,
            r#"invalid escape in JSON pointer "a~": '~' must be followed by 0 or 1"#,
        ),
        (
            &deep,
            MAX_DEPTH,
            "filter nested too deeply (more than 256 levels)",
        ),
    ];
    assert!(cases.len() >= 20);
    for (input, position, message) in cases {
        let expected = ParseError {
            position,
            message: message.to_string(),
        };
        assert_eq!(parse(input), Err(expected), "parsing {input:?}");
    }
}

#[test]
fn nesting_up_to_the_limit_parses_and_prints_back() {
    let open = "(".repeat(MAX_DEPTH);
    let grouped = format!("{open}a pr{}", ")".repeat(MAX_DEPTH));
    assert_eq!(parse(&grouped), Ok(pr("a")));

    // Negations count like groups; the canonical `!(...)` must still fit under the limit.
    let negated = format!("{}a pr{}", "!(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    let f = parse(&negated).unwrap();
    assert_eq!(parse(&f.to_string()), Ok(f));
    // One group around it: the last `!` is one level too many.
    let too_deep = format!("({negated})");
    assert_eq!(
        parse(&too_deep).unwrap_err().position,
        1 + 2 * (MAX_DEPTH - 1)
    );
}

#[test]
fn huge_unbalanced_input_is_an_error_not_a_stack_overflow() {
    let err = parse(&"(".repeat(1_000_000)).unwrap_err();
    assert_eq!(err.position, MAX_DEPTH);
    let err = parse(&"!(".repeat(1_000_000)).unwrap_err();
    assert_eq!(err.position, MAX_DEPTH * 2);
}

#[test]
fn printer_writes_the_canonical_form() {
    let cases = [
        ("userName eq 'smith'", r#"/userName eq "smith""#),
        ("  a   pr ", "/a pr"),
        ("!a pr", "!(/a pr)"),
        ("a pr or b pr and c pr", "/a pr or /b pr and /c pr"),
        ("(a pr or b pr) and c pr", "(/a pr or /b pr) and /c pr"),
        ("a pr and (b pr and c pr)", "/a pr and (/b pr and /c pr)"),
        ("a pr or (b pr or c pr)", "/a pr or (/b pr or /c pr)"),
        ("((a pr)) or (b pr and c pr)", "/a pr or /b pr and /c pr"),
        ("!(a pr or b pr)", "!(/a pr or /b pr)"),
        ("/a~1b eq 1.50", "/a~1b eq 1.5"),
        ("a eq 1.0", "/a eq 1.0"),
        ("a ge 1e3", "/a ge 1000.0"),
        (r#"a ne "x\ty""#, r#"/a ne "x\ty""#),
        ("/ pr", "/ pr"),
        ("true and !false", "true and !(false)"),
    ];
    for (input, printed) in cases {
        let f = parse(input).unwrap();
        assert_eq!(f.to_string(), printed, "printing {input:?}");
        assert_eq!(parse(printed), Ok(f), "re-parsing {printed:?}");
    }
}

#[test]
fn filters_serialize_as_their_canonical_string() {
    let f: Filter = serde_json::from_value(json!("a eq 'x' and b pr")).unwrap();
    assert_eq!(
        serde_json::to_value(&f).unwrap(),
        json!(r#"/a eq "x" and /b pr"#)
    );
    let err = serde_json::from_value::<Filter>(json!("a eq")).unwrap_err();
    assert!(err.to_string().contains("position 4"), "{err}");
    assert_eq!("a pr".parse::<Filter>(), Ok(pr("a")));
}

#[test]
fn parse_errors_are_bad_requests() {
    use idsync_core::{ErrorCode, HasErrorCode};
    assert_eq!(parse("(").unwrap_err().error_code(), ErrorCode::BadRequest);
}
