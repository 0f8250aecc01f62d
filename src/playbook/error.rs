//! Load errors: every problem found while loading a playbook, each with the file:line:col
//! of the offending key, collected so one load reports all of them.

use super::Location;

/// One problem in the input, where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub loc: Location,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.loc.line == 0 {
            write!(f, "{}: {}", self.loc.file.display(), self.message)
        } else {
            write!(f, "{}: {}", self.loc, self.message)
        }
    }
}

impl std::error::Error for LoadError {}

/// All problems found in one load, in the order they were found. This is the error type
/// inside the `anyhow::Error` returned by the loaders (downcast to inspect it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors {
    pub errors: Vec<LoadError>,
}

impl std::fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.errors.len();
        if count > 1 {
            writeln!(f, "{count} errors in the playbook:")?;
        }
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}
