//! Application variables and `fermyon:spin/variables@2.0.0`.
//!
//! Values come, highest first, from `--variable name=value`, from the
//! environment as `SPIN_VARIABLE_<NAME>` (Spin's environment provider), and
//! from the manifest default. They are resolved once at load time: a
//! required variable without a value stops the app from starting, which is
//! better than failing on the first request. A component sees only the
//! variables its own `[component.x.variables]` table defines, each a
//! template over application variables (`"Bearer {{ token }}"`).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Result, bail};
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::fermyon::spin::variables::{self, Error};
use crate::manifest::{VariableDecl, check_variable_name};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(String),
}

/// A string with `{{ variable }}` references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Self> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_string()));
            }
            let Some(len) = rest[start + 2..].find("}}") else {
                bail!("`{{{{` without a closing `}}}}` in `{text}`");
            };
            let name = rest[start + 2..start + 2 + len].trim();
            check_variable_name(name)?;
            parts.push(Part::Variable(name.to_string()));
            rest = &rest[start + 2 + len + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template { parts })
    }

    pub fn check_references(&self, declared: &[String]) -> Result<()> {
        for part in &self.parts {
            if let Part::Variable(name) = part
                && !declared.iter().any(|d| d == name)
            {
                bail!("refers to `{{{{ {name} }}}}`, which is not declared in [variables]");
            }
        }
        Ok(())
    }

    /// Whether the template refers to variables and every one of them has
    /// its manifest default: nobody chose this value.
    pub fn only_defaults(&self, values: &AppVariables) -> bool {
        let mut names = self.parts.iter().filter_map(|p| match p {
            Part::Variable(n) => Some(n),
            Part::Literal(_) => None,
        });
        let mut any = false;
        let all = names.all(|n| {
            any = true;
            values.defaulted.contains(n)
        });
        any && all
    }

    pub fn render(&self, values: &AppVariables) -> Result<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Variable(name) => match values.values.get(name) {
                    Some(v) => out.push_str(v),
                    None => bail!("variable `{name}` has no value"),
                },
            }
        }
        Ok(out)
    }
}

/// Application variables with their values resolved.
#[derive(Debug, Clone, Default)]
pub struct AppVariables {
    values: BTreeMap<String, String>,
    /// Names whose value is the manifest default (nobody set it).
    defaulted: std::collections::BTreeSet<String>,
}

impl AppVariables {
    pub fn resolve(
        declared: &BTreeMap<String, VariableDecl>,
        given: &BTreeMap<String, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        for name in given.keys() {
            if !declared.contains_key(name) {
                bail!("variable `{name}` is given but the manifest does not declare it in [variables]");
            }
        }
        let mut values = BTreeMap::new();
        let mut defaulted = std::collections::BTreeSet::new();
        for (name, decl) in declared {
            let set = given
                .get(name)
                .cloned()
                .or_else(|| env(&format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())));
            if set.is_none() && decl.default.is_some() {
                defaulted.insert(name.clone());
            }
            let value = set.or_else(|| decl.default.clone());
            match value {
                Some(v) => {
                    values.insert(name.clone(), v);
                }
                None if decl.required => bail!(
                    "variable `{name}` is required: give it with --variable {name}=VALUE or SPIN_VARIABLE_{}",
                    name.to_ascii_uppercase()
                ),
                None => {}
            }
        }
        Ok(AppVariables { values, defaulted })
    }
}

/// The variables one component sees, rendered at load time.
pub struct VariablesState {
    values: Arc<BTreeMap<String, String>>,
}

impl VariablesState {
    pub fn new(values: Arc<BTreeMap<String, String>>) -> Self {
        VariablesState { values }
    }
}

pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> &mut VariablesState) -> Result<()> {
    variables::add_to_linker::<T, HasSelf<VariablesState>>(linker, get).map_err(|e| anyhow::anyhow!("{e:?}"))
}

impl variables::Host for VariablesState {
    fn get(&mut self, name: String) -> Result<String, Error> {
        if check_variable_name(&name).is_err() {
            return Err(Error::InvalidName(name));
        }
        self.values.get(&name).cloned().ok_or(Error::Undefined(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decls(entries: &[(&str, Option<&str>, bool)]) -> BTreeMap<String, VariableDecl> {
        entries
            .iter()
            .map(|(n, d, r)| {
                (n.to_string(), VariableDecl { default: d.map(String::from), required: *r, secret: false })
            })
            .collect()
    }

    #[test]
    fn flag_beats_environment_beats_default() {
        let d = decls(&[("a", Some("default"), false), ("b", Some("default"), false), ("c", Some("default"), false)]);
        let given = BTreeMap::from([("a".to_string(), "flag".to_string())]);
        let env = |k: &str| (k == "SPIN_VARIABLE_A" || k == "SPIN_VARIABLE_B").then(|| "env".to_string());
        let v = AppVariables::resolve(&d, &given, env).unwrap();
        assert_eq!(v.values["a"], "flag");
        assert_eq!(v.values["b"], "env");
        assert_eq!(v.values["c"], "default");
    }

    #[test]
    fn missing_required_variable_is_an_error() {
        let err = AppVariables::resolve(&decls(&[("token", None, true)]), &BTreeMap::new(), |_| None).unwrap_err();
        assert!(err.to_string().contains("--variable token="), "{err}");
    }

    #[test]
    fn undeclared_given_variable_is_an_error() {
        let given = BTreeMap::from([("nope".to_string(), "x".to_string())]);
        assert!(AppVariables::resolve(&BTreeMap::new(), &given, |_| None).is_err());
    }

    #[test]
    fn a_template_knows_whether_only_defaults_made_it() {
        let d = decls(&[("addr", Some("redis://127.0.0.1:6379"), false), ("other", Some("x"), false)]);
        let given = BTreeMap::from([("other".to_string(), "set".to_string())]);
        let v = AppVariables::resolve(&d, &given, |_| None).unwrap();
        assert!(Template::parse("{{ addr }}").unwrap().only_defaults(&v));
        assert!(!Template::parse("{{ other }}").unwrap().only_defaults(&v));
        assert!(!Template::parse("{{ addr }}{{ other }}").unwrap().only_defaults(&v));
        assert!(!Template::parse("redis://literal").unwrap().only_defaults(&v));
    }

    #[test]
    fn templates_render_references() {
        let d = decls(&[("token", Some("s3cret"), false)]);
        let v = AppVariables::resolve(&d, &BTreeMap::new(), |_| None).unwrap();
        let t = Template::parse("Bearer {{ token }}!").unwrap();
        assert_eq!(t.render(&v).unwrap(), "Bearer s3cret!");
        assert!(Template::parse("{{ Token }}").is_err());
        assert!(Template::parse("{{ token").is_err());
        assert!(t.check_references(&["other".to_string()]).is_err());
    }
}
