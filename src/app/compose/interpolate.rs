//! Variable interpolation in compose values, as the Compose Specification
//! describes it: `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty),
//! `${VAR-default}` (unset), `${VAR:?err}`, `${VAR?err}`, `${VAR:+alt}`,
//! `${VAR+alt}`, and `$$` for a literal `$`. Defaults and alternatives are
//! interpolated themselves (`${A:-${B}}`). Pure: the caller supplies the
//! lookup and reports the unset variables.

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InterpError {
    #[error("invalid interpolation format in {0:?}")]
    Format(String),
    #[error("required variable {name} is missing a value{}", if msg.is_empty() { String::new() } else { format!(": {msg}") })]
    Required { name: String, msg: String },
    #[error("the value expands to more than {} MiB", MAX_VALUE >> 20)]
    TooLarge,
}

/// The most one value may expand to: `$A` repeated, with A a big variable
/// from .env, is a small file and a huge value.
pub const MAX_VALUE: usize = 4 << 20;

/// The result, and the variables that were unset and had no default (they
/// became "": the caller warns about each).
pub fn interpolate(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), InterpError> {
    let mut unset = Vec::new();
    let out = expand(s, lookup, &mut unset, 0)?;
    Ok((out, unset))
}

/// Nesting deeper than this is refused (a bound on the recursion).
const MAX_DEPTH: usize = 32;

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn expand(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
    depth: usize,
) -> Result<String, InterpError> {
    let bad = || InterpError::Format(s.to_string());
    if depth > MAX_DEPTH {
        return Err(bad());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        if out.len() > MAX_VALUE {
            return Err(InterpError::TooLarge);
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let mut chars = after.chars();
        match chars.next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('{') => {
                let body_start = &after[1..];
                let end = closing_brace(body_start).ok_or_else(bad)?;
                let body = &body_start[..end];
                out.push_str(&braced(body, s, lookup, unset, depth)?);
                rest = &body_start[end + 1..];
            }
            Some(c) if is_name_start(c) => {
                let len = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
                let name = &after[..len];
                out.push_str(&value_or_warn(name, lookup, unset));
                rest = &after[len..];
            }
            // A lone `$` (at the end, or before anything that starts no
            // name) stays itself.
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    if out.len() > MAX_VALUE {
        return Err(InterpError::TooLarge);
    }
    Ok(out)
}

/// The index of the `}` closing a `${` whose body starts `s`, counting
/// nested `${...}`.
fn closing_brace(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn value_or_warn(
    name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> String {
    match lookup(name) {
        Some(v) => v,
        None => {
            if !unset.iter().any(|u| u == name) {
                unset.push(name.to_string());
            }
            String::new()
        }
    }
}

fn braced(
    body: &str,
    whole: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
    depth: usize,
) -> Result<String, InterpError> {
    let bad = || InterpError::Format(whole.to_string());
    let len = body.find(|c: char| !is_name(c)).unwrap_or(body.len());
    let name = &body[..len];
    if !name.starts_with(is_name_start) {
        return Err(bad());
    }
    let op = &body[len..];
    if op.is_empty() {
        return Ok(value_or_warn(name, lookup, unset));
    }
    let value = lookup(name);
    let (colon, op) = match op.strip_prefix(':') {
        Some(o) => (true, o),
        None => (false, op),
    };
    let mut ops = op.chars();
    let kind = ops.next().ok_or_else(bad)?;
    let arg = ops.as_str();
    // With ':', an empty value counts as unset.
    let set = match &value {
        Some(v) => !(colon && v.is_empty()),
        None => false,
    };
    match kind {
        '-' => match value {
            Some(v) if set => Ok(v),
            _ => expand(arg, lookup, unset, depth + 1),
        },
        '+' => {
            if set {
                expand(arg, lookup, unset, depth + 1)
            } else {
                Ok(String::new())
            }
        }
        '?' => match value {
            Some(v) if set => Ok(v),
            _ => Err(InterpError::Required {
                name: name.to_string(),
                msg: expand(arg, lookup, unset, depth + 1)?,
            }),
        },
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("a".into()),
            "EMPTY" => Some(String::new()),
            "B_2" => Some("b2".into()),
            _ => None,
        }
    }

    fn run(s: &str) -> Result<(String, Vec<String>), InterpError> {
        interpolate(s, &env)
    }

    fn ok(s: &str) -> String {
        run(s).unwrap().0
    }

    #[test]
    fn every_form() {
        assert_eq!(ok("x$A-${A}y"), "xa-ay");
        assert_eq!(ok("$B_2.$A"), "b2.a");
        assert_eq!(ok("${NOPE:-d}|${EMPTY:-d}|${EMPTY-d}|${NOPE-d}"), "d|d||d");
        assert_eq!(
            ok("${A:+alt}|${EMPTY:+alt}|${EMPTY+alt}|${NOPE+alt}"),
            "alt||alt|"
        );
        assert_eq!(ok("$$A $${A} cost: 5$"), "$A ${A} cost: 5$");
        assert_eq!(ok("${NOPE:-${A}-${NOPE2:-z}}"), "a-z");
        assert_eq!(ok("${A:?must}"), "a");
        assert_eq!(ok("$ 1 $-"), "$ 1 $-");
    }

    #[test]
    fn unset_variables_become_empty_and_are_reported() {
        assert_eq!(
            run("${X}$X$Y").unwrap(),
            ("".to_string(), vec!["X".to_string(), "Y".to_string()])
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            run("${NOPE:?set it}").unwrap_err(),
            InterpError::Required {
                name: "NOPE".into(),
                msg: "set it".into()
            }
        );
        assert!(run("${EMPTY?x}").is_ok());
        assert!(run("${EMPTY:?x}").is_err());
        for bad in [
            "${", "${A", "${}", "${1A}", "${A:}", "${A!x}", "${A:*x}", "${ A}",
        ] {
            assert!(
                matches!(run(bad), Err(InterpError::Format(_))),
                "{bad}: {:?}",
                run(bad)
            );
        }
        assert_eq!(
            InterpError::Required {
                name: "V".into(),
                msg: String::new()
            }
            .to_string(),
            "required variable V is missing a value"
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let s = "${A:-".repeat(10_000) + &"}".repeat(10_000);
        assert!(run(&s).is_ok() || run(&s).is_err());
        let s = "${N:-".repeat(100) + &"}".repeat(100);
        assert!(run(&s).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = run(&s);
        }

        #[test]
        fn never_panics_on_dollar_soup(s in "[$:{}?+\\-AB_a1 ]{0,40}") {
            let _ = run(&s);
        }

        #[test]
        fn text_without_dollars_is_kept(s in "[^$]*") {
            prop_assert_eq!(ok(&s), s);
        }
    }
}
