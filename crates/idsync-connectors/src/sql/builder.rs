//! Building SQL text with bound parameters for the three dialects: identifiers are quoted
//! (and only ever come from the connector's configuration), values only ever travel as bound
//! parameters, never spliced into the text.

use super::settings::Dialect;

/// A bound parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// One column of many rows, bound as one PostgreSQL array (see `ParamColumn`).
    Column(ParamColumn),
}

/// The values of one column over many rows, bound as one PostgreSQL array: an `INSERT … SELECT
/// … FROM UNNEST($1::text[], $2::int8[], …)` has one parameter per column whatever the row count,
/// so its text — and its prepared statement and plan — is the same for every batch.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamColumn {
    Str(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
}

impl ParamColumn {
    /// The column of `values`, or `None` when they mix kinds (or are all NULL: no type to give).
    pub fn collect<'a>(values: impl Iterator<Item = Option<&'a Param>> + Clone) -> Option<Self> {
        let first = values.clone().flatten().next()?;
        macro_rules! gather {
            ($variant:ident) => {{
                let mut out = Vec::new();
                for v in values {
                    out.push(match v {
                        None => None,
                        Some(Param::$variant(x)) => Some(x.clone()),
                        Some(_) => return None,
                    });
                }
                ParamColumn::$variant(out)
            }};
        }
        Some(match first {
            Param::Str(_) => gather!(Str),
            Param::Int(_) => gather!(Int),
            Param::Float(_) => gather!(Float),
            Param::Bool(_) => gather!(Bool),
            Param::Column(_) => return None,
        })
    }

    /// The PostgreSQL array type the placeholder is cast to.
    pub fn pg_array_type(&self) -> &'static str {
        match self {
            ParamColumn::Str(_) => "text[]",
            ParamColumn::Int(_) => "int8[]",
            ParamColumn::Float(_) => "float8[]",
            ParamColumn::Bool(_) => "bool[]",
        }
    }
}

/// SQL text under construction plus its parameters, in placeholder order.
#[derive(Debug)]
pub struct SqlBuilder {
    pub dialect: Dialect,
    pub sql: String,
    pub params: Vec<Param>,
}

impl SqlBuilder {
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            sql: String::with_capacity(256),
            params: Vec::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.sql.push_str(text);
        self
    }

    /// Appends a quoted identifier (a column, or a possibly schema-qualified table).
    pub fn ident(&mut self, name: &str) -> &mut Self {
        let quoted = quote_ident(self.dialect, name);
        self.sql.push_str(&quoted);
        self
    }

    /// Appends a placeholder bound to `param`.
    pub fn param(&mut self, param: Param) -> &mut Self {
        self.params.push(param);
        match self.dialect {
            Dialect::Postgres => {
                self.sql.push('$');
                self.sql.push_str(&self.params.len().to_string());
            }
            Dialect::MySql | Dialect::Sqlite => self.sql.push('?'),
        }
        self
    }

    /// Appends `$n::<type>[]` bound to a column of values (PostgreSQL only).
    pub fn column_param(&mut self, column: ParamColumn) -> &mut Self {
        let cast = column.pg_array_type();
        self.param(Param::Column(column));
        self.sql.push_str("::");
        self.sql.push_str(cast);
        self
    }

    /// Appends a column read as text: every value travels back as a string and is typed by
    /// the `objectTypes` declaration, so no driver-specific type decoding is needed.
    pub fn column_as_text(&mut self, column: &str) -> &mut Self {
        let quoted = quote_ident(self.dialect, column);
        match self.dialect {
            Dialect::Postgres => self.sql.push_str(&format!("{quoted}::text")),
            Dialect::MySql => self.sql.push_str(&format!("CAST({quoted} AS CHAR)")),
            Dialect::Sqlite => self.sql.push_str(&format!("CAST({quoted} AS TEXT)")),
        }
        self
    }
}

/// Quotes an identifier; a dot separates schema and table.
pub fn quote_ident(dialect: Dialect, name: &str) -> String {
    let q = match dialect {
        Dialect::MySql => '`',
        Dialect::Postgres | Dialect::Sqlite => '"',
    };
    name.split('.')
        .map(|part| {
            let escaped = part.replace(q, &format!("{q}{q}"));
            format!("{q}{escaped}{q}")
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Escapes a value for `LIKE ... ESCAPE '!'` (`!` works as the escape character in all three
/// dialects, unlike a backslash, whose literal spelling differs between them).
pub fn like_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        if matches!(c, '!' | '%' | '_') {
            out.push('!');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_values_bound() {
        let mut b = SqlBuilder::new(Dialect::Postgres);
        b.push("SELECT * FROM ")
            .ident("hr.peo\"ple")
            .push(" WHERE ")
            .ident("a")
            .push(" = ");
        b.param(Param::Str("x'; drop".into()));
        assert_eq!(
            b.sql,
            "SELECT * FROM \"hr\".\"peo\"\"ple\" WHERE \"a\" = $1"
        );
        assert_eq!(b.params, vec![Param::Str("x'; drop".into())]);
        assert_eq!(quote_ident(Dialect::MySql, "a`b"), "`a``b`");
        assert_eq!(like_escape("50%_off!"), "50!%!_off!!");
    }
}
