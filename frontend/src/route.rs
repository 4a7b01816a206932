//! Which page the address asks for: the playground (`/`), an attendee joining a workshop
//! (`/?join=CODE`), or the trainer's dashboard (`/?trainer` or `/#trainer`, the admin token
//! given as `?admin=TOKEN`).
//!
//! Plain Rust, unit-tested on the host: the page passes `location.search` and `location.hash`.

/// The page the address asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Containers, presets, lessons.
    Playground,
    /// The join form, with the code from the address (may be empty: it can be typed).
    Join { code: String },
    /// The trainer's dashboard, with the admin token from the address if it had one.
    Trainer { token: Option<String> },
}

impl Route {
    /// The route of `search` (`?join=ab12cd`, or empty) and `hash` (`#trainer`, or empty).
    /// The trainer's page wins over a join code; `?admin=TOKEN` alone means the trainer too.
    pub fn parse(search: &str, hash: &str) -> Route {
        let token = query_param(search, "admin").filter(|t| !t.is_empty());
        let trainer = query_param(search, "trainer").is_some()
            || hash.trim_start_matches('#') == "trainer"
            || token.is_some();
        if trainer {
            return Route::Trainer { token };
        }
        match query_param(search, "join") {
            Some(code) => Route::Join {
                code: code.trim().to_string(),
            },
            None => Route::Playground,
        }
    }

    pub fn is_trainer(&self) -> bool {
        matches!(self, Route::Trainer { .. })
    }
}

/// The join code of a page's query (`?token=t&join=ab12cd` → `AB12CD`), when it looks like
/// one: what the page passes on to `/ws?join=CODE`.
pub fn join_code(search: &str) -> Option<String> {
    query_param(search, "join")
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty() && c.len() <= 16 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The node a join link names (`&node=NAME`, a word of letters, digits, `-`, `_`, `.`): the
/// page passes it on to `/ws`, so that a balancer in front of several nodes takes the
/// attendee to the workshop's node.
pub fn node_param(search: &str) -> Option<String> {
    query_param(search, "node").filter(|n| {
        !n.is_empty()
            && n.len() <= 63
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    })
}

/// The value of `key` in a query string (`?a=1&b`), percent-decoded; `Some("")` for a key
/// without a value, `None` when it is absent.
pub fn query_param(search: &str, key: &str) -> Option<String> {
    search
        .trim_start_matches('?')
        .split('&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k) == key).then(|| decode(v))
        })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; the bytes are
/// read as UTF-8 (a malformed escape is kept as it was).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: &u8) -> Option<u8> {
    (*byte as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_join_code_for_the_socket_is_taken_only_when_plausible() {
        assert_eq!(join_code("?token=t&join=ab12cd").as_deref(), Some("AB12CD"));
        assert_eq!(join_code("?join=a%2F..").as_deref(), None);
        assert_eq!(
            node_param("?join=AB12CD&node=node-a").as_deref(),
            Some("node-a")
        );
        assert_eq!(node_param("?join=AB12CD&node=a%26b").as_deref(), None);
        assert_eq!(node_param("?join=AB12CD").as_deref(), None);
        assert_eq!(join_code("?trainer").as_deref(), None);
    }

    use super::*;

    #[test]
    fn no_query_is_the_playground() {
        assert_eq!(Route::parse("", ""), Route::Playground);
        assert_eq!(Route::parse("?token=abc", ""), Route::Playground);
    }

    #[test]
    fn a_join_code_opens_the_join_form() {
        assert_eq!(
            Route::parse("?join=AB12CD", ""),
            Route::Join {
                code: "AB12CD".into()
            }
        );
        assert_eq!(
            Route::parse("?token=t&join=%20ab12cd+", ""),
            Route::Join {
                code: "ab12cd".into()
            }
        );
        // The code may be typed on the form.
        assert_eq!(Route::parse("?join", ""), Route::Join { code: "".into() });
    }

    #[test]
    fn trainer_by_query_hash_or_admin_token() {
        assert_eq!(Route::parse("?trainer", ""), Route::Trainer { token: None });
        assert_eq!(Route::parse("", "#trainer"), Route::Trainer { token: None });
        assert_eq!(
            Route::parse("?trainer&admin=s%2Fe+cret", ""),
            Route::Trainer {
                token: Some("s/e cret".into())
            }
        );
        assert_eq!(
            Route::parse("?admin=tok&join=AB12CD", ""),
            Route::Trainer {
                token: Some("tok".into())
            }
        );
        assert_eq!(
            Route::parse("?trainer=1&admin=", ""),
            Route::Trainer { token: None }
        );
        assert!(Route::parse("?trainer", "").is_trainer());
    }

    #[test]
    fn decoding_keeps_what_is_not_an_escape() {
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%41"), "%zzA");
        assert_eq!(decode("%C3%A9t%C3%A9"), "été");
        assert_eq!(query_param("?a=1&b=2", "b").as_deref(), Some("2"));
        assert_eq!(query_param("?a=1&b=2", "c"), None);
    }
}
