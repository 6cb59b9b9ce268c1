//! The `mqtts` shell command grammar, parsed into typed commands.
//!
//! ```text
//! mqtts show                      every effective value and its source; secrets as <set>/<unset>
//! mqtts set <option> <value>      stage a value (checked now; "" unsets an optional text)
//! mqtts set <secret-option>       the value is then read without echo (the shell's job)
//! mqtts unset <option>            stage the return to the default
//! mqtts apply                     validate the whole result, store it, reconnect
//! mqtts factory-reset             erase every stored option
//! ```
//!
//! `<option>` is an option name ([`crate::options::OptionId`]) or `power_on.<switch>`
//! (`off`, `on`, `last`). `last.<switch>` is written by the device only. A value with spaces
//! is quoted with `"` (no escapes). The Zephyr shell splits the line itself and calls
//! [`parse_args`]; [`parse_line`] splits a whole line (host, tests, fuzzing).

use core::fmt;

use crate::config::ConfigError;
use crate::options::Key;

/// Usage text.
pub const USAGE: &str =
    "mqtts show | set <option> [<value>] | unset <option> | apply | factory-reset";

/// A parsed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `show`.
    Show,
    /// `set <key> <value>`; `value` is `None` when it is to be read without echo.
    Set {
        /// The key.
        key: Key<'a>,
        /// The value text, already checked against the key's allowed values.
        value: Option<&'a str>,
    },
    /// `unset <key>`.
    Unset {
        /// The key.
        key: Key<'a>,
    },
    /// `apply`.
    Apply,
    /// `factory-reset`.
    FactoryReset,
}

/// Why a command line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellError<'a> {
    /// Nothing typed.
    Empty,
    /// The line does not start with `mqtts`.
    NotMqtts,
    /// Not one of the subcommands.
    UnknownCommand(&'a str),
    /// The subcommand needs an option name.
    MissingKey,
    /// Not an option name (nor `power_on.<switch>`).
    UnknownKey(&'a str),
    /// `last.<switch>` is written by the device, not from the shell.
    ReadOnlyKey(&'a str),
    /// A value given without echo must be a secret; other options need their value inline.
    MissingValue(&'a str),
    /// The value breaks the option's rule.
    Value(ConfigError),
    /// More words than the subcommand takes.
    TooManyArguments,
    /// A `"` without its closing `"`.
    UnterminatedQuote,
}

impl fmt::Display for ShellError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShellError::Empty | ShellError::NotMqtts => write!(f, "usage: {USAGE}"),
            ShellError::UnknownCommand(c) => write!(f, "unknown command `{c}`; usage: {USAGE}"),
            ShellError::MissingKey => write!(f, "missing option name; usage: {USAGE}"),
            ShellError::UnknownKey(k) => write!(
                f,
                "unknown option `{k}` (see `mqtts show`; switches: power_on.<switch>)"
            ),
            ShellError::ReadOnlyKey(k) => write!(f, "`{k}` is kept by the device, not settable"),
            ShellError::MissingValue(k) => write!(f, "option `{k}` needs a value"),
            ShellError::Value(e) => {
                write!(f, "option `{}`: {}", e.field, e.summary())?;
                match e.problem {
                    crate::config::ConfigProblem::InvalidValue { allowed } => {
                        write!(f, "; allowed: {allowed}")
                    }
                    crate::config::ConfigProblem::OutOfRange { min, max } => {
                        write!(f, "; allowed: {min}..={max}")
                    }
                    _ => Ok(()),
                }
            }
            ShellError::TooManyArguments => write!(f, "too many arguments; usage: {USAGE}"),
            ShellError::UnterminatedQuote => write!(f, "missing closing `\"`"),
        }
    }
}

fn key_of<'a>(name: &'a str) -> Result<Key<'a>, ShellError<'a>> {
    match Key::parse(name) {
        Some(Key::LastState(_)) => Err(ShellError::ReadOnlyKey(name)),
        Some(k) => Ok(k),
        None => Err(ShellError::UnknownKey(name)),
    }
}

/// Parses the words after `mqtts` (as the Zephyr shell hands them to the group's handler).
pub fn parse_args<'a>(args: &[&'a str]) -> Result<Command<'a>, ShellError<'a>> {
    let (&cmd, rest) = args.split_first().ok_or(ShellError::Empty)?;
    let no_more = |n: usize| {
        if rest.len() > n {
            Err(ShellError::TooManyArguments)
        } else {
            Ok(())
        }
    };
    match cmd {
        "show" => no_more(0).map(|_| Command::Show),
        "apply" => no_more(0).map(|_| Command::Apply),
        "factory-reset" => no_more(0).map(|_| Command::FactoryReset),
        "unset" => {
            no_more(1)?;
            let key = key_of(rest.first().ok_or(ShellError::MissingKey)?)?;
            Ok(Command::Unset { key })
        }
        "set" => {
            no_more(2)?;
            let name = *rest.first().ok_or(ShellError::MissingKey)?;
            let key = key_of(name)?;
            match rest.get(1) {
                Some(v) => {
                    key.check_value(v).map_err(ShellError::Value)?;
                    Ok(Command::Set {
                        key,
                        value: Some(v),
                    })
                }
                None if key.is_secret() => Ok(Command::Set { key, value: None }),
                None => Err(ShellError::MissingValue(name)),
            }
        }
        other => Err(ShellError::UnknownCommand(other)),
    }
}

/// Most words on one line.
pub const MAX_WORDS: usize = 4;

/// Splits `line` into words (spaces and tabs; `"…"` keeps spaces) and parses
/// `mqtts <command> …`.
pub fn parse_line(line: &str) -> Result<Command<'_>, ShellError<'_>> {
    let mut words: heapless::Vec<&str, { MAX_WORDS + 1 }> = heapless::Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start_matches([' ', '\t', '\r', '\n']);
        if rest.is_empty() {
            break;
        }
        let (word, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').ok_or(ShellError::UnterminatedQuote)?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = rest.find([' ', '\t', '\r', '\n']).unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        words.push(word).map_err(|_| ShellError::TooManyArguments)?;
        rest = after;
    }
    match words.split_first() {
        None => Err(ShellError::Empty),
        Some((&"mqtts", args)) => parse_args(args),
        Some(_) => Err(ShellError::NotMqtts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigProblem;
    use crate::options::OptionId;
    use std::string::ToString;

    #[test]
    fn grammar() {
        assert_eq!(parse_line("mqtts show"), Ok(Command::Show));
        assert_eq!(parse_line("  mqtts\tapply \r\n"), Ok(Command::Apply));
        assert_eq!(parse_line("mqtts factory-reset"), Ok(Command::FactoryReset));
        assert_eq!(
            parse_line("mqtts set broker_port 18883"),
            Ok(Command::Set {
                key: Key::Option(OptionId::BrokerPort),
                value: Some("18883")
            })
        );
        assert_eq!(
            parse_line(r#"mqtts set password "two words""#),
            Ok(Command::Set {
                key: Key::Option(OptionId::Password),
                value: Some("two words")
            })
        );
        assert_eq!(
            parse_line(r#"mqtts set client_id """#),
            Ok(Command::Set {
                key: Key::Option(OptionId::ClientId),
                value: Some("")
            })
        );
        assert_eq!(
            parse_line("mqtts set aliyun_product_secret"),
            Ok(Command::Set {
                key: Key::Option(OptionId::AliyunProductSecret),
                value: None
            })
        );
        assert_eq!(
            parse_line("mqtts set power_on.Relay1 last"),
            Ok(Command::Set {
                key: Key::PowerOn("Relay1"),
                value: Some("last")
            })
        );
        assert_eq!(
            parse_line("mqtts unset keepalive_s"),
            Ok(Command::Unset {
                key: Key::Option(OptionId::KeepaliveS)
            })
        );
    }

    #[test]
    fn refusals_name_the_option_and_allowed_values() {
        assert_eq!(parse_line(""), Err(ShellError::Empty));
        assert_eq!(parse_line("mqtts"), Err(ShellError::Empty));
        assert_eq!(parse_line("kernel reboot"), Err(ShellError::NotMqtts));
        assert_eq!(
            parse_line("mqtts reboot"),
            Err(ShellError::UnknownCommand("reboot"))
        );
        assert_eq!(parse_line("mqtts set"), Err(ShellError::MissingKey));
        assert_eq!(parse_line("mqtts unset"), Err(ShellError::MissingKey));
        assert_eq!(
            parse_line("mqtts set port 1"),
            Err(ShellError::UnknownKey("port"))
        );
        assert_eq!(
            parse_line("mqtts set last.Relay1 true"),
            Err(ShellError::ReadOnlyKey("last.Relay1"))
        );
        assert_eq!(
            parse_line("mqtts set broker_port"),
            Err(ShellError::MissingValue("broker_port"))
        );
        assert_eq!(
            parse_line("mqtts show x"),
            Err(ShellError::TooManyArguments)
        );
        assert_eq!(
            parse_line("mqtts set tls true false"),
            Err(ShellError::TooManyArguments)
        );
        assert_eq!(
            parse_line("mqtts set a b c d e"),
            Err(ShellError::TooManyArguments)
        );
        assert_eq!(
            parse_line(r#"mqtts set password "open"#),
            Err(ShellError::UnterminatedQuote)
        );
        let e = parse_line("mqtts set broker_port 0x10").unwrap_err();
        assert_eq!(
            e,
            ShellError::Value(ConfigError {
                field: "broker_port",
                problem: ConfigProblem::OutOfRange { min: 1, max: 65535 }
            })
        );
        assert_eq!(
            e.to_string(),
            "option `broker_port`: out of range; allowed: 1..=65535"
        );
        let e = parse_line("mqtts set power_on.LED maybe").unwrap_err();
        assert_eq!(
            e.to_string(),
            "option `power_on`: invalid value; allowed: off, on, last"
        );
        assert_eq!(
            parse_line("mqtts set tls yes").unwrap_err().to_string(),
            "option `tls`: invalid value; allowed: true, false"
        );
    }
}
