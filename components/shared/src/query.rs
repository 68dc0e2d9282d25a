//! Query strings: `a=1&b=two+words&c=%C3%A9`.

/// The decoded pairs of a query string, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses leniently, as browsers write: `+` is a space, a malformed
    /// percent escape is kept as written, a pair without `=` has an empty value.
    pub fn parse(query: &str) -> Self {
        let pairs = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode_component(name), decode_component(value))
            })
            .collect();
        Self(pairs)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

fn decode_component(text: &str) -> String {
    let bytes = decode_bytes(&text.replace('+', " "));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Decodes `%XX` escapes of a path segment; `None` if the result is not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    String::from_utf8(decode_bytes(text)).ok()
}

fn decode_bytes(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes_pairs() {
        let query = Query::parse("q=french+press&category=brewing&x=%C3%A9t%C3%A9&flag&&page=2");
        assert_eq!(query.get("q"), Some("french press"));
        assert_eq!(query.get("category"), Some("brewing"));
        assert_eq!(query.get("x"), Some("été"));
        assert_eq!(query.get("flag"), Some(""));
        assert_eq!(query.get("page"), Some("2"));
        assert_eq!(query.get("missing"), None);
    }

    #[test]
    fn first_value_wins_and_empty_query_is_empty() {
        assert_eq!(Query::parse("a=1&a=2").get("a"), Some("1"));
        assert_eq!(Query::parse(""), Query::default());
    }

    #[test]
    fn malformed_escapes_are_kept_as_written() {
        assert_eq!(Query::parse("q=100%&r=%zz%4").get("q"), Some("100%"));
        assert_eq!(Query::parse("r=%zz%4").get("r"), Some("%zz%4"));
        assert_eq!(Query::parse("q=%2B+").get("q"), Some("+ "));
    }

    #[test]
    fn path_segments_decode_without_plus_rule() {
        assert_eq!(percent_decode("a+b%20c").as_deref(), Some("a+b c"));
        assert_eq!(percent_decode("%FF"), None);
    }
}
