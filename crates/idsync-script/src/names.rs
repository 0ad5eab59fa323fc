//! Which names can be script variables. Variable names are spliced into the compiled wrapper's
//! parameter list, so this check is also what keeps a binding name from injecting code.

/// Words that cannot name a parameter of a sloppy-mode function, plus `eval` and `arguments`
/// (restricted), and the wrapper's own variable.
const RESERVED: &[&str] = &[
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "new",
    "null",
    "return",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
    "let",
    "static",
    "implements",
    "interface",
    "package",
    "private",
    "protected",
    "public",
    "eval",
    "arguments",
    crate::engine::SOURCE_VAR,
];

/// `Ok` when `name` can be a script variable; otherwise why not.
pub(crate) fn check_variable(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("the name is empty"),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_' || c == '$') => {
            return Err("a variable name starts with a letter, '_' or '$'");
        }
        Some(_) => {}
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
        return Err("a variable name has only letters, digits, '_' and '$'");
    }
    if RESERVED.contains(&name) {
        return Err("the name is a reserved word");
    }
    Ok(())
}
