//! Confining an organizer's ad-hoc SQL to the rows of their own events.
//!
//! Policy: ClickHouse 18.16 has no row policies, so SeatGrid rewrites the query before sending it.
//! The SQL is tokenized (strings, quoted names and comments are understood, never matched as
//! text); every table a `FROM`, `JOIN` or `IN` names must be `domain_events` (bare or
//! `<database>.domain_events`) or a name the query itself defines with `AS`; each `domain_events`
//! becomes a subquery over that table filtered to the organizer's events. Table functions
//! (`url(...)`, `remote(...)`, `numbers(...)`), other tables and other databases are refused.
//! Admins run SQL unconfined. The read-only user's own limits (`readonly`, `allow_databases`, row,
//! byte, memory and time caps) apply to both.

use sqlparser::dialect::ClickHouseDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer};
use uuid::Uuid;

/// Why a query was not confined: it reads something an organizer may not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OutOfScope(pub String);

/// The one table ad-hoc SQL reads.
pub const TABLE: &str = "domain_events";

/// Whose rows a query may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every row (admins).
    All,
    /// The rows of these events only (an organizer's own events).
    Events(Vec<Uuid>),
}

fn significant(tokens: &[Token], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !matches!(tokens[i], Token::Whitespace(_)))
}

fn word(token: &Token) -> Option<&str> {
    match token {
        Token::Word(w) => Some(w.value.as_str()),
        _ => None,
    }
}

fn is_keyword(token: &Token, keyword: Keyword) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.keyword == keyword)
}

/// `sql` rewritten to read only `scope`'s rows of `database`'s `domain_events`.
pub fn confine(sql: &str, database: &str, scope: &Scope) -> Result<String, OutOfScope> {
    let Scope::Events(events) = scope else {
        return Ok(sql.to_owned());
    };
    let tokens = Tokenizer::new(&ClickHouseDialect {}, sql)
        .tokenize()
        .map_err(|e| OutOfScope(format!("cannot read the query: {e}")))?;
    // Names the query defines itself (`WITH x AS (...)`, `... AS x`) may be read like tables.
    let mut defined = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let next = significant(&tokens, i + 1);
        if is_keyword(token, Keyword::AS) {
            if let Some(name) = next.and_then(|n| word(&tokens[n])) {
                defined.push(name.to_ascii_lowercase());
            }
        } else if let (Some(name), Some(n)) = (word(token), next) {
            if is_keyword(&tokens[n], Keyword::AS)
                && significant(&tokens, n + 1).is_some_and(|p| tokens[p] == Token::LParen)
            {
                defined.push(name.to_ascii_lowercase());
            }
        }
    }
    let ids: Vec<String> = events.iter().map(|e| format!("'{e}'")).collect();
    let filter = if ids.is_empty() {
        "0".to_owned()
    } else {
        format!("event_id IN ({})", ids.join(", "))
    };
    let refuse = |what: String| {
        Err(OutOfScope(format!(
            "{what}: an organizer's SQL may read only {TABLE} (limited to their own events)"
        )))
    };
    let mut out = String::with_capacity(sql.len() + 128);
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        out.push_str(&token.to_string());
        i += 1;
        let names_a_table = is_keyword(token, Keyword::FROM)
            || is_keyword(token, Keyword::JOIN)
            || is_keyword(token, Keyword::IN);
        if !names_a_table {
            continue;
        }
        let Some(start) = significant(&tokens, i) else {
            break;
        };
        let Some(first) = word(&tokens[start]) else {
            continue; // a subquery, a list or a literal: its own FROMs are checked in turn
        };
        // The relation's name: `name` or `db.name`.
        let mut end = start;
        let mut parts = vec![first.to_owned()];
        if let Some(dot) = significant(&tokens, start + 1).filter(|&d| tokens[d] == Token::Period) {
            match significant(&tokens, dot + 1).and_then(|n| word(&tokens[n]).map(|w| (n, w))) {
                Some((n, w)) => {
                    parts.push(w.to_owned());
                    end = n;
                }
                None => return refuse(format!("unexpected name after {first}.")),
            }
        }
        let after = significant(&tokens, end + 1);
        if after.is_some_and(|a| tokens[a] == Token::LParen) {
            if is_keyword(token, Keyword::IN) {
                continue; // a function call in an IN list
            }
            return refuse(format!("table function {}", parts.join(".")));
        }
        let table = match parts.as_slice() {
            [name] => name.to_ascii_lowercase(),
            [db, name] if db == database => name.to_ascii_lowercase(),
            _ => return refuse(parts.join(".")),
        };
        if table != TABLE {
            if parts.len() == 1 && defined.contains(&table) {
                continue;
            }
            if is_keyword(token, Keyword::IN) && parts.len() == 1 {
                // `x IN name` reads a table too; only defined names are allowed there.
                return refuse(format!("IN {table}"));
            }
            return refuse(table);
        }
        // Copy the whitespace before the name, then the confined subquery in its place.
        for t in &tokens[i..start] {
            out.push_str(&t.to_string());
        }
        i = end + 1;
        let mut final_ = "";
        if let Some(f) = after.filter(|&a| is_keyword(&tokens[a], Keyword::FINAL)) {
            final_ = " FINAL";
            i = f + 1;
        }
        out.push_str(&format!(
            "(SELECT * FROM {database}.{TABLE}{final_} WHERE {filter})"
        ));
        let aliased = significant(&tokens, i).is_some_and(|a| match &tokens[a] {
            Token::Word(w) => w.keyword == Keyword::AS || w.keyword == Keyword::NoKeyword,
            _ => false,
        });
        if !aliased {
            out.push_str(&format!(" AS {TABLE}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mine() -> Scope {
        Scope::Events(vec![Uuid::from_u128(7)])
    }

    const ID: &str = "'00000000-0000-0000-0000-000000000007'";

    #[test]
    fn given_an_admin_then_the_query_is_unchanged() {
        let sql = "SELECT count() FROM system.tables";
        assert_eq!(confine(sql, "seatgrid", &Scope::All).unwrap(), sql);
    }

    #[test]
    fn given_an_organizer_then_every_read_of_the_table_is_filtered_to_their_events() {
        let sql = "SELECT event_type, count() FROM domain_events FINAL GROUP BY event_type";
        let out = confine(sql, "seatgrid", &mine()).unwrap();
        assert_eq!(
            out,
            format!(
                "SELECT event_type, count() FROM (SELECT * FROM seatgrid.domain_events FINAL \
                 WHERE event_id IN ({ID})) AS domain_events GROUP BY event_type"
            )
        );
        let joined = confine(
            "SELECT a.event_type FROM seatgrid.domain_events AS a JOIN domain_events b USING \
             (position) WHERE a.event_id IN (SELECT event_id FROM domain_events)",
            "seatgrid",
            &mine(),
        )
        .unwrap();
        assert_eq!(joined.matches("WHERE event_id IN").count(), 3, "{joined}");
        assert!(joined.contains(") AS a JOIN"), "{joined}");
        assert!(joined.contains(") b USING"), "{joined}");
    }

    #[test]
    fn given_an_organizer_then_names_the_query_defines_may_be_read() {
        let sql = "WITH t AS (SELECT event_type FROM domain_events) SELECT count() FROM t";
        let out = confine(sql, "seatgrid", &mine()).unwrap();
        assert!(out.ends_with("FROM t"), "{out}");
        assert!(out.contains("WHERE event_id IN"), "{out}");
    }

    #[test]
    fn given_an_organizer_then_other_tables_databases_and_table_functions_are_refused() {
        for sql in [
            "SELECT * FROM system.tables",
            "SELECT * FROM other.domain_events",
            "SELECT * FROM numbers(10)",
            "SELECT * FROM url('http://x', CSV, 'a String')",
            "SELECT 1 FROM domain_events WHERE event_id IN users",
            "SELECT * FROM domain_events JOIN system.one USING (dummy)",
            "SELECT * FROM secrets",
        ] {
            assert!(confine(sql, "seatgrid", &mine()).is_err(), "{sql}");
        }
    }

    #[test]
    fn given_words_in_strings_or_comments_then_they_are_not_tables() {
        let sql = "SELECT 'FROM system.tables' AS s -- FROM secrets\nFROM domain_events";
        let out = confine(sql, "seatgrid", &mine()).unwrap();
        assert!(out.contains("'FROM system.tables'"), "{out}");
        assert!(out.contains("WHERE event_id IN"), "{out}");
    }

    #[test]
    fn given_no_events_then_no_rows() {
        let out = confine(
            "SELECT count() FROM domain_events",
            "seatgrid",
            &Scope::Events(vec![]),
        )
        .unwrap();
        assert!(out.contains("WHERE 0"), "{out}");
    }
}
