//! The command's error: one line for the user.

use std::fmt;

/// Why a command failed; printed as one line, exit code 2.
#[derive(Debug)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keep it on one line whatever the inner errors print.
        f.write_str(&self.0.replace('\n', " "))
    }
}

impl CliError {
    /// An error with a message.
    pub fn new(msg: impl Into<String>) -> Self {
        CliError(msg.into())
    }
}
