//! Why a run under the explorer produced no outcome of its scenario.

use thiserror::Error;

/// A run that ended without its scenario's outcome. Each one is recorded as the
/// [`PANIC_PROPERTY`](crate::PANIC_PROPERTY) violation: none is a simulated event, all are
/// bugs in smmu-lab.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RunFailure {
    /// The run panicked; the panic's message (its payload when that is a string, else
    /// "panic"). A panic payload is text by nature, so it stays text.
    #[error("{message}")]
    Panicked {
        /// The panic message.
        message: String,
    },
    /// The run finished without storing an outcome.
    #[error("run produced no outcome")]
    NoOutcome,
    /// The scheduler of a random, PCT or DFS run declined to start an execution.
    #[error("scheduler refused to run")]
    SchedulerRefused,
    /// The replay scheduler declined to start an execution.
    #[error("replay scheduler refused to run")]
    ReplaySchedulerRefused,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_says_what_happened_in_the_words_it_always_used() {
        let panicked = RunFailure::Panicked {
            message: "index out of bounds".into(),
        };
        assert_eq!(panicked.to_string(), "index out of bounds");
        assert_eq!(RunFailure::NoOutcome.to_string(), "run produced no outcome");
        assert_eq!(
            RunFailure::SchedulerRefused.to_string(),
            "scheduler refused to run"
        );
        assert_eq!(
            RunFailure::ReplaySchedulerRefused.to_string(),
            "replay scheduler refused to run"
        );
    }
}
