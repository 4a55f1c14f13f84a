//! Why a component call produced no verdict, and whose fault that is.

/// Why a call produced no verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The component trapped (a panic, an unreachable, a failed `init`).
    Trap,
    /// The call ran past its deadline.
    Deadline,
    /// The component tried to grow past its memory cap.
    MemoryLimit,
    /// The component returned something the gateway cannot use (e.g. status 200 in a deny).
    BadVerdict,
    /// The gateway could not create an instance (e.g. the instance pool is exhausted).
    Instantiate,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [FaultKind::Trap, FaultKind::Deadline, FaultKind::MemoryLimit, FaultKind::BadVerdict, FaultKind::Instantiate];

    /// (label, blame) of every kind, for the metrics.
    pub fn labels() -> [(&'static str, &'static str); 5] {
        FaultKind::ALL.map(|k| (k.label(), k.blame()))
    }

    /// Metric and log label.
    pub fn label(self) -> &'static str {
        match self {
            FaultKind::Trap => "trap",
            FaultKind::Deadline => "deadline",
            FaultKind::MemoryLimit => "memory_limit",
            FaultKind::BadVerdict => "bad_verdict",
            FaultKind::Instantiate => "instantiate",
        }
    }

    /// Whose fault it is: the component's (`guest`) or the gateway's (`host`).
    pub fn blame(self) -> &'static str {
        match self {
            FaultKind::Instantiate => "host",
            FaultKind::Trap | FaultKind::Deadline | FaultKind::MemoryLimit | FaultKind::BadVerdict => "guest",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PluginFault {
    pub kind: FaultKind,
    /// For the log only: may contain the component's panic message, never sent to clients.
    pub detail: String,
}
