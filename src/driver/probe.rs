//! What this kernel offers each backend, for `corio::probe()`.

/// Whether the kernel supports one thing, with a note.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Support {
    /// Its name, as in the kernel headers without the prefix
    /// (`DEFER_TASKRUN`, `RECVMSG`).
    pub name: &'static str,
    /// True when the kernel has it.
    pub supported: bool,
    /// What corio does with it, or the kernel's error when refused.
    pub note: String,
}

/// io_uring's setup flags, features and opcodes as this kernel has them
/// (empty where io_uring is not built).
pub(crate) fn kernel() -> (Vec<Support>, Vec<Support>, Vec<Support>) {
    #[cfg(corio_uring)]
    {
        let wrap = |v: Vec<(&'static str, bool, String)>| {
            v.into_iter()
                .map(|(name, supported, note)| Support {
                    name,
                    supported,
                    note,
                })
                .collect()
        };
        let (flags, features, opcodes) = super::uring::probe::probe();
        (wrap(flags), wrap(features), wrap(opcodes))
    }
    #[cfg(not(corio_uring))]
    (Vec::new(), Vec::new(), Vec::new())
}
