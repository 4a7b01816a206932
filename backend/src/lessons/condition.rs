//! Conditions on the live view: `alpha.hostname == "gamma" && beta.ns.net == alpha.ns.net`.
//!
//! A small expression language (docs/lessons.md): literals (strings, integers, booleans), facts
//! (dotted paths looked up in a JSON tree the session builds from what the observer reads),
//! comparisons, `contains`, `+`/`-`, `!`, `&&`, `||` and parentheses. A fact that does not exist
//! makes its comparison false, and the evaluation says which fact was missing, so a learner is
//! told "beta is not running" rather than "false".

use serde_json::Value;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Str(String),
    Int(i64),
    Bool(bool),
    /// A fact: `alpha.ns.net` is `["alpha", "ns", "net"]`.
    Fact(Vec<String>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(Box<Expr>, Op, Box<Expr>),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
}

/// Why a condition could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("condition {text:?}: {why} (at character {at})")]
pub struct ParseError {
    pub text: String,
    pub why: String,
    pub at: usize,
}

/// What an evaluation found: whether it holds, and if not, the first reason in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub holds: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Str(String),
    Int(i64),
    Ident(String),
    Dot,
    Op(Op),
    Not,
    And,
    Or,
    Plus,
    Minus,
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, ParseError> {
    let err = |at: usize, why: &str| ParseError {
        text: text.to_string(),
        why: why.to_string(),
        at,
    };
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let start = i;
        let token = match c {
            _ if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err(start, "a string without its closing quote")),
                        Some('"') => break,
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some(e @ ('"' | '\\')) => s.push(*e),
                                Some('n') => s.push('\n'),
                                _ => return Err(err(i, "an unknown escape (\\\" \\\\ \\n)")),
                            }
                            i += 1;
                        }
                        Some(ch) => s.push(*ch),
                    }
                    i += 1;
                }
                i += 1;
                Token::Str(s)
            }
            '0'..='9' => {
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let digits: String = chars[start..i].iter().collect();
                let n = digits
                    .parse()
                    .map_err(|_| err(start, "a number too large"))?;
                Token::Int(n)
            }
            _ if c.is_ascii_alphabetic() || c == '_' => {
                // Names may hold '-' (`images.two-runs`), but not start with it.
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '-'))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                match word.as_str() {
                    "contains" => Token::Op(Op::Contains),
                    _ => Token::Ident(word),
                }
            }
            _ => {
                let (token, len) = match (two.as_str(), c) {
                    ("==", _) => (Token::Op(Op::Eq), 2),
                    ("!=", _) => (Token::Op(Op::Ne), 2),
                    ("<=", _) => (Token::Op(Op::Le), 2),
                    (">=", _) => (Token::Op(Op::Ge), 2),
                    ("&&", _) => (Token::And, 2),
                    ("||", _) => (Token::Or, 2),
                    (_, '<') => (Token::Op(Op::Lt), 1),
                    (_, '>') => (Token::Op(Op::Gt), 1),
                    (_, '!') => (Token::Not, 1),
                    (_, '.') => (Token::Dot, 1),
                    (_, '+') => (Token::Plus, 1),
                    (_, '-') => (Token::Minus, 1),
                    (_, '(') => (Token::Open, 1),
                    (_, ')') => (Token::Close, 1),
                    _ => return Err(err(start, &format!("unexpected {c:?}"))),
                };
                i += len;
                token
            }
        };
        out.push((start, token));
    }
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(usize, Token)>,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, why: &str) -> ParseError {
        let at = self
            .tokens
            .get(self.pos)
            .map_or(self.text.chars().count(), |(at, _)| *at);
        ParseError {
            text: self.text.to_string(),
            why: why.to_string(),
            at,
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while self.eat(&Token::Or) {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.not()?;
        while self.eat(&Token::And) {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.eat(&Token::Not) {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Expr, ParseError> {
        let left = self.sum()?;
        if let Some(Token::Op(op)) = self.peek() {
            let op = *op;
            self.pos += 1;
            let right = self.sum()?;
            return Ok(Expr::Compare(Box::new(left), op, Box::new(right)));
        }
        Ok(left)
    }

    fn sum(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.atom()?;
        loop {
            if self.eat(&Token::Plus) {
                left = Expr::Add(Box::new(left), Box::new(self.atom()?));
            } else if self.eat(&Token::Minus) {
                left = Expr::Sub(Box::new(left), Box::new(self.atom()?));
            } else {
                return Ok(left);
            }
        }
    }

    fn atom(&mut self) -> Result<Expr, ParseError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.err("the condition ends too early"));
        };
        self.pos += 1;
        match token {
            Token::Str(s) => Ok(Expr::Str(s)),
            Token::Int(n) => Ok(Expr::Int(n)),
            Token::Ident(w) if w == "true" => Ok(Expr::Bool(true)),
            Token::Ident(w) if w == "false" => Ok(Expr::Bool(false)),
            Token::Ident(first) => {
                let mut path = vec![first];
                while self.eat(&Token::Dot) {
                    match self.peek().cloned() {
                        Some(Token::Ident(w)) => path.push(w),
                        // `images.busybox.layers` or a container named `c1`: digits too.
                        Some(Token::Int(n)) => path.push(n.to_string()),
                        _ => return Err(self.err("a name after '.'")),
                    }
                    self.pos += 1;
                }
                Ok(Expr::Fact(path))
            }
            Token::Open => {
                let inner = self.or()?;
                if !self.eat(&Token::Close) {
                    return Err(self.err("a ')'"));
                }
                Ok(inner)
            }
            _ => {
                self.pos -= 1;
                Err(self.err("a value or a fact"))
            }
        }
    }
}

impl Expr {
    pub fn parse(text: &str) -> Result<Expr, ParseError> {
        let mut p = Parser {
            text,
            tokens: tokenize(text)?,
            pos: 0,
        };
        let expr = p.or()?;
        if p.pos != p.tokens.len() {
            return Err(p.err("an operator, or the end"));
        }
        Ok(expr)
    }

    /// Every fact the condition reads.
    pub fn facts(&self) -> Vec<&[String]> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a [String]>) {
        match self {
            Expr::Fact(p) => out.push(p),
            Expr::Not(e) => e.collect(out),
            Expr::And(a, b)
            | Expr::Or(a, b)
            | Expr::Compare(a, _, b)
            | Expr::Add(a, b)
            | Expr::Sub(a, b) => {
                a.collect(out);
                b.collect(out);
            }
            Expr::Str(_) | Expr::Int(_) | Expr::Bool(_) => {}
        }
    }

    /// Evaluate against the facts.
    pub fn eval(&self, facts: &Value) -> Outcome {
        match self.test(facts) {
            Ok((holds, reason)) => Outcome { holds, reason },
            Err(reason) => Outcome {
                holds: false,
                reason: Some(reason),
            },
        }
    }

    /// Whether it holds (and if not, why in words), or why it cannot be told (a missing fact,
    /// a type mismatch). The first failing part of a conjunction explains the whole.
    fn test(&self, facts: &Value) -> Result<(bool, Option<String>), String> {
        let yes = || Ok((true, None));
        match self {
            Expr::Compare(a, op, b) => {
                let (l, r) = (a.value(facts)?, b.value(facts)?);
                if compare(&l, *op, &r)? {
                    return yes();
                }
                let why = match a.as_ref() {
                    Expr::Fact(_) => format!(
                        "{} is {}, so {} does not hold",
                        a.show(),
                        short(&l),
                        self.show()
                    ),
                    _ => format!("{} does not hold", self.show()),
                };
                Ok((false, Some(why)))
            }
            Expr::And(a, b) => {
                let left = a.test(facts)?;
                if !left.0 {
                    return Ok(left);
                }
                b.test(facts)
            }
            Expr::Or(a, b) => {
                let left = a.test(facts);
                if matches!(left, Ok((true, _))) {
                    return yes();
                }
                match (left, b.test(facts)) {
                    (_, Ok((true, _))) => yes(),
                    (Err(e), Err(_)) => Err(e),
                    _ => Ok((
                        false,
                        Some(format!("neither side of {} holds", self.show())),
                    )),
                }
            }
            Expr::Not(e) => {
                let (holds, _) = e.test(facts)?;
                Ok((!holds, holds.then(|| format!("{} holds", e.show()))))
            }
            _ => {
                let v = self.value(facts)?;
                let holds = truthy(&v)?;
                Ok((holds, (!holds).then(|| format!("{} is false", self.show()))))
            }
        }
    }

    /// The value of a literal, a fact or a sum; a condition is true or false.
    fn value(&self, facts: &Value) -> Result<Value, String> {
        Ok(match self {
            Expr::Str(s) => Value::from(s.as_str()),
            Expr::Int(n) => Value::from(*n),
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Fact(path) => lookup(facts, path)?,
            Expr::Add(a, b) | Expr::Sub(a, b) => {
                let (l, r) = (a.value(facts)?, b.value(facts)?);
                let (Some(l), Some(r)) = (l.as_i64(), r.as_i64()) else {
                    return Err(format!("{} needs two numbers", self.show()));
                };
                let n = match self {
                    Expr::Add(..) => l.checked_add(r),
                    _ => l.checked_sub(r),
                };
                Value::from(n.ok_or_else(|| format!("{} overflows", self.show()))?)
            }
            Expr::Compare(..) | Expr::And(..) | Expr::Or(..) | Expr::Not(..) => {
                Value::Bool(self.test(facts)?.0)
            }
        })
    }

    /// The expression written back, for messages.
    pub fn show(&self) -> String {
        match self {
            Expr::Str(s) => format!("{s:?}"),
            Expr::Int(n) => n.to_string(),
            Expr::Bool(b) => b.to_string(),
            Expr::Fact(p) => p.join("."),
            Expr::Not(e) => format!("!{}", e.show_grouped()),
            Expr::And(a, b) => format!("{} && {}", a.show_grouped(), b.show_grouped()),
            Expr::Or(a, b) => format!("{} || {}", a.show_grouped(), b.show_grouped()),
            Expr::Compare(a, op, b) => {
                let op = match op {
                    Op::Eq => "==",
                    Op::Ne => "!=",
                    Op::Lt => "<",
                    Op::Le => "<=",
                    Op::Gt => ">",
                    Op::Ge => ">=",
                    Op::Contains => "contains",
                };
                format!("{} {op} {}", a.show(), b.show())
            }
            Expr::Add(a, b) => format!("{} + {}", a.show(), b.show()),
            Expr::Sub(a, b) => format!("{} - {}", a.show(), b.show()),
        }
    }

    fn show_grouped(&self) -> String {
        match self {
            Expr::And(..) | Expr::Or(..) => format!("({})", self.show()),
            _ => self.show(),
        }
    }
}

/// A value shown in a message: strings quoted, long ones cut.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn lookup(facts: &Value, path: &[String]) -> Result<Value, String> {
    let mut v = facts;
    for (i, key) in path.iter().enumerate() {
        match v.get(key) {
            Some(next) => v = next,
            None if i == 0 => {
                return Err(format!("there is no {key:?}: no such container is running"))
            }
            None if i == 1 && path[0] == "images" => {
                return Err(format!("there is no image {key:?} yet"))
            }
            None => return Err(format!("{} is not known", path.join("."))),
        }
    }
    Ok(v.clone())
}

fn truthy(v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("{} is not true or false", short(v)))
}

fn compare(l: &Value, op: Op, r: &Value) -> Result<bool, String> {
    use std::cmp::Ordering;
    if op == Op::Contains {
        return match (l, r) {
            (Value::Array(items), _) => Ok(items.contains(r)),
            (Value::String(s), Value::String(sub)) => Ok(s.contains(sub.as_str())),
            _ => Err(format!(
                "contains needs a list or a string on its left, not {}",
                short(l)
            )),
        };
    }
    let ordering = match (l, r) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => a
                .as_f64()
                .zip(b.as_f64())
                .and_then(|(a, b)| a.partial_cmp(&b)),
        },
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    match (op, ordering) {
        (Op::Eq, o) => Ok(o == Some(Ordering::Equal)),
        (Op::Ne, o) => Ok(o != Some(Ordering::Equal)),
        (_, None) => Err(format!("{} and {} cannot be ordered", short(l), short(r))),
        (Op::Lt, Some(o)) => Ok(o == Ordering::Less),
        (Op::Le, Some(o)) => Ok(o != Ordering::Greater),
        (Op::Gt, Some(o)) => Ok(o == Ordering::Greater),
        (Op::Ge, Some(o)) => Ok(o != Ordering::Less),
        (Op::Contains, _) => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> Value {
        json!({
            "alpha": {"hostname": "gamma", "ns": {"net": 10, "uts": 11}, "interfaces": ["lo", "eth0"],
                      "output": "hello world\n", "oom_killed": false},
            "beta": {"hostname": "beta", "ns": {"net": 10, "uts": 12}, "interfaces": ["lo"]},
            "host": {"ns": {"net": 1, "uts": 2}},
            "images": {"busybox": {"layers": 1}, "two-runs": {"layers": 3}},
        })
    }

    fn holds(text: &str) -> Outcome {
        Expr::parse(text).expect(text).eval(&facts())
    }

    #[test]
    fn comparisons_of_facts_and_literals() {
        assert!(holds(r#"alpha.hostname == "gamma""#).holds);
        assert!(holds("beta.ns.net == alpha.ns.net && beta.ns.uts != alpha.ns.uts").holds);
        assert!(holds("alpha.ns.net != host.ns.net").holds);
        assert!(
            holds(r#"alpha.interfaces contains "eth0" && !(beta.interfaces contains "eth0")"#)
                .holds
        );
        assert!(holds(r#"alpha.output contains "hello""#).holds);
        assert!(holds("images.two-runs.layers == images.busybox.layers + 2").holds);
        assert!(holds("images.two-runs.layers - 1 >= 2").holds);
        assert!(holds("alpha.oom_killed == false || beta.oom_killed").holds);
        assert!(!holds(r#"beta.hostname == "gamma""#).holds);
    }

    #[test]
    fn a_failure_says_which_part_and_why() {
        let o = holds(r#"alpha.hostname == "gamma" && beta.hostname == "gamma""#);
        assert!(!o.holds);
        let reason = o.reason.unwrap();
        assert!(reason.contains(r#"beta.hostname is "beta""#), "{reason}");
        let missing = holds(r#"delta.hostname == "x""#).reason.unwrap();
        assert!(missing.contains("no such container"), "{missing}");
        let image = holds("images.three.layers == 2").reason.unwrap();
        assert!(image.contains("no image \"three\""), "{image}");
    }

    #[test]
    fn bad_conditions_are_refused_with_a_position() {
        for (text, at) in [
            ("alpha.hostname ==", 17),
            (r#"alpha.hostname == "x"#, 18),
            ("alpha. == 1", 7),
            ("(a == 1", 7),
            ("a == 1 b", 7),
            ("a # b", 2),
        ] {
            let e = Expr::parse(text).unwrap_err();
            assert_eq!(e.at, at, "{text}: {e}");
        }
    }

    #[test]
    fn show_writes_the_condition_back() {
        let text = r#"a.b == "x" && (c.d contains 1 || !e)"#;
        assert_eq!(Expr::parse(text).unwrap().show(), text);
    }
}
