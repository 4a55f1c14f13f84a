//! What the listeners serve: a workload (through the pipeline) or the admin routes.

use super::Shared;
use crate::body::ProxyBody;
use crate::proxy::error::GatewayError;
use crate::proxy::guard;
use crate::proxy::pipeline;
use crate::proxy::server::ConnectionInfo;
use crate::proxy::server::{ConnectionLimits, Site};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Duration;

/// The admin listener serves a scraper and a few probes.
const ADMIN_LIMITS: ConnectionLimits =
    ConnectionLimits { max_connections: 64, header_timeout: Duration::from_secs(10), idle_timeout: Duration::from_secs(60), held_before_decision: 0 };

pub struct WorkloadSite {
    pub name: Arc<str>,
    pub shared: Arc<Shared>,
}

impl Site for WorkloadSite {
    fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.shared.workload(&self.name).and_then(|w| w.tls.clone())
    }

    fn limits(&self) -> ConnectionLimits {
        self.shared.workload(&self.name).map(|w| w.connections).unwrap_or(ADMIN_LIMITS)
    }

    async fn handle(&self, request: hyper::Request<Incoming>, conn: Arc<ConnectionInfo>) -> hyper::Response<ProxyBody> {
        // The workload is looked up per request: after a reload, new requests
        // use the new snapshot while this one finishes on the old.
        match self.shared.workload(&self.name) {
            Some(workload) => pipeline::handle(&workload, request, &conn).await,
            None => GatewayError::WorkloadGone.into_response(),
        }
    }
}

pub struct AdminSite {
    pub shared: Arc<Shared>,
}

impl Site for AdminSite {
    fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        None
    }

    fn limits(&self) -> ConnectionLimits {
        ADMIN_LIMITS
    }

    async fn handle(&self, request: hyper::Request<Incoming>, _conn: Arc<ConnectionInfo>) -> hyper::Response<ProxyBody> {
        // The same Host/Origin guard as workloads: a DNS-rebinding page must not read /metrics.
        let (parts, _) = request.into_parts();
        let snapshot = self.shared.snapshot();
        let allowed = snapshot
            .admin
            .as_ref()
            .is_some_and(|admin| guard::authority(&parts).is_some_and(|host| admin.guard.host_allowed(&host)) && admin.guard.origin_allowed(&parts.headers));
        if !allowed {
            return GatewayError::HostNotAllowed.into_response();
        }
        crate::admin::respond(parts.uri.path(), self.shared.is_ready(), &self.shared.metrics)
    }
}
