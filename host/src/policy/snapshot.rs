//! The compiled, immutable form of one policy: what [`super::compile`] produces
//! and the gateway swaps in atomically on a reload.

use crate::proxy::guard::RequestGuard;
use crate::proxy::workload::Workload;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

pub struct Snapshot {
    pub workloads: HashMap<Arc<str>, Arc<Workload>>,
    pub admin: Option<Admin>,
}

/// The admin listener: where, and which `Host`/`Origin` values it answers.
#[derive(Debug, Clone)]
pub struct Admin {
    pub listen: SocketAddr,
    /// Loopback names and the policy's `admin.allowed_hosts`: a DNS-rebinding
    /// page must not read `/metrics`.
    pub guard: RequestGuard,
}
