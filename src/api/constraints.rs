//! Marathon placement constraints (`[field, operator, value]`) and their check against one
//! agent, given where the app's other tasks already run. Pure: no I/O, no clock.

use std::collections::{BTreeMap, HashMap};

use regex::Regex;

#[derive(Debug, Clone)]
pub enum Operator {
    Unique,
    Cluster(Option<String>),
    GroupBy(Option<usize>),
    Like(Regex),
    Unlike(Regex),
    MaxPer(usize),
    Is(String),
}

#[derive(Debug, Clone)]
pub struct Constraint {
    /// `hostname` or an agent attribute name.
    pub field: String,
    pub operator: Operator,
    /// The operator's name and value, for messages.
    pub text: String,
}

/// Where an app's tasks run, per constraint field: value -> task count.
pub type FieldCounts = HashMap<String, HashMap<String, usize>>;

fn full_match(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| format!("'{pattern}' is not a valid regular expression: {e}"))
}

impl Constraint {
    /// Parses `[field, operator, value?]`.
    pub fn parse(parts: &[String]) -> Result<Constraint, String> {
        if parts.len() < 2 || parts.len() > 3 {
            return Err("a constraint is [field, operator] or [field, operator, value]".into());
        }
        let field = parts[0].clone();
        if field.is_empty() {
            return Err("the constraint field must not be empty".into());
        }
        let value = parts.get(2).filter(|v| !v.is_empty()).cloned();
        let need_value = |op: &str| value.clone().ok_or_else(|| format!("{op} needs a value"));
        let operator = match parts[1].as_str() {
            "UNIQUE" => Operator::Unique,
            "CLUSTER" => Operator::Cluster(value.clone()),
            "GROUP_BY" => Operator::GroupBy(match &value {
                Some(v) => Some(
                    v.parse()
                        .map_err(|_| format!("GROUP_BY value must be a number, got '{v}'"))?,
                ),
                None => None,
            }),
            "LIKE" => Operator::Like(full_match(&need_value("LIKE")?)?),
            "UNLIKE" => Operator::Unlike(full_match(&need_value("UNLIKE")?)?),
            "MAX_PER" => {
                let v = need_value("MAX_PER")?;
                Operator::MaxPer(
                    v.parse()
                        .map_err(|_| format!("MAX_PER value must be a number, got '{v}'"))?,
                )
            }
            "IS" => Operator::Is(need_value("IS")?),
            other => {
                return Err(format!(
                    "Constraint operator '{other}' is not one of {}",
                    crate::api::appdef::OPERATORS.join(", ")
                ))
            }
        };
        let text = parts[1..].join(" ");
        Ok(Constraint {
            field,
            operator,
            text,
        })
    }

    /// The value of this constraint's field on an agent.
    pub fn agent_value<'a>(
        &self,
        hostname: &'a str,
        attributes: &'a BTreeMap<String, String>,
    ) -> Option<&'a str> {
        if self.field == "hostname" {
            Some(hostname)
        } else {
            attributes.get(&self.field).map(String::as_str)
        }
    }

    /// Whether one more task of the app may run on an agent with this field value.
    /// `counts` holds the app's current tasks per value of this field; `all_values` every
    /// value this field has across agents (for GROUP_BY).
    pub fn allows(
        &self,
        value: Option<&str>,
        counts: Option<&HashMap<String, usize>>,
        all_values: usize,
    ) -> bool {
        let count_of = |v: &str| counts.and_then(|c| c.get(v)).copied().unwrap_or(0);
        match &self.operator {
            Operator::Unlike(re) => value.is_none_or(|v| !re.is_match(v)),
            _ => {
                let Some(v) = value else { return false };
                match &self.operator {
                    Operator::Unique => count_of(v) == 0,
                    Operator::Cluster(Some(want)) | Operator::Is(want) => v == want,
                    Operator::Cluster(None) => match counts {
                        Some(c) if c.values().any(|n| *n > 0) => count_of(v) > 0,
                        _ => true,
                    },
                    Operator::Like(re) => re.is_match(v),
                    Operator::MaxPer(max) => count_of(v) < *max,
                    Operator::GroupBy(groups) => {
                        let groups = groups.unwrap_or(all_values).max(1).min(all_values.max(1));
                        // Counted without collecting: this runs for every agent and
                        // every instance placed.
                        let (mut used, mut least) = (0usize, usize::MAX);
                        for n in counts.into_iter().flat_map(|c| c.values().copied()) {
                            if n > 0 {
                                used += 1;
                                least = least.min(n);
                            }
                        }
                        let mine = count_of(v);
                        if used < groups {
                            // Fill every group once before stacking onto one.
                            mine == 0
                        } else {
                            mine <= least
                        }
                    }
                    Operator::Unlike(_) => true,
                }
            }
        }
    }

    /// Why no agent satisfies it, in the words of the queue.
    pub fn describe(&self) -> String {
        format!("constraint {} {} not satisfiable", self.field, self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(parts: &[&str]) -> Constraint {
        Constraint::parse(&parts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn counts(pairs: &[(&str, usize)]) -> HashMap<String, usize> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn unique_refuses_a_second_task_on_a_value() {
        let u = c(&["hostname", "UNIQUE"]);
        assert!(u.allows(Some("a"), None, 3));
        assert!(!u.allows(Some("a"), Some(&counts(&[("a", 1)])), 3));
        assert!(u.allows(Some("b"), Some(&counts(&[("a", 1)])), 3));
    }

    #[test]
    fn like_and_unlike_match_the_whole_value() {
        let like = c(&["hostname", "LIKE", "srv2.*"]);
        assert!(like.allows(Some("srv2-a"), None, 1));
        assert!(!like.allows(Some("xsrv2"), None, 1));
        let unlike = c(&["rack", "UNLIKE", "r1"]);
        assert!(!unlike.allows(Some("r1"), None, 1));
        assert!(unlike.allows(None, None, 1));
    }

    #[test]
    fn cluster_max_per_is_and_group_by() {
        assert!(c(&["rack", "CLUSTER", "r1"]).allows(Some("r1"), None, 2));
        assert!(!c(&["rack", "CLUSTER", "r1"]).allows(Some("r2"), None, 2));
        let free_cluster = c(&["rack", "CLUSTER"]);
        assert!(!free_cluster.allows(Some("r2"), Some(&counts(&[("r1", 1)])), 2));
        let max = c(&["rack", "MAX_PER", "2"]);
        assert!(max.allows(Some("r1"), Some(&counts(&[("r1", 1)])), 2));
        assert!(!max.allows(Some("r1"), Some(&counts(&[("r1", 2)])), 2));
        assert!(c(&["os", "IS", "linux"]).allows(Some("linux"), None, 1));
        let group = c(&["rack", "GROUP_BY"]);
        assert!(!group.allows(Some("r1"), Some(&counts(&[("r1", 1)])), 2));
        assert!(group.allows(Some("r2"), Some(&counts(&[("r1", 1)])), 2));
        assert!(group.allows(Some("r1"), Some(&counts(&[("r1", 1), ("r2", 1)])), 2));
        assert!(!group.allows(Some("r1"), Some(&counts(&[("r1", 2), ("r2", 1)])), 2));
    }

    #[test]
    fn unknown_operators_and_bad_values_are_errors() {
        let parse =
            |p: &[&str]| Constraint::parse(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(parse(&["hostname", "NEAR"]).unwrap_err().contains("NEAR"));
        assert!(parse(&["hostname", "MAX_PER", "x"]).is_err());
        assert!(parse(&["hostname", "LIKE"]).is_err());
        assert!(parse(&["hostname", "LIKE", "("]).is_err());
    }
}
