//! What the listeners serve: a workload (through the pipeline) or the admin routes.

use super::Shared;
use crate::proxy::body::ProxyBody;
use crate::proxy::error::GatewayError;
use crate::proxy::pipeline;
use crate::proxy::server::Site;
use crate::proxy::server::ConnectionInfo;
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Duration;

pub struct WorkloadSite {
    pub name: Arc<str>,
    pub shared: Arc<Shared>,
}

impl Site for WorkloadSite {
    fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.shared.workload(&self.name).and_then(|w| w.tls.clone())
    }

    fn header_timeout(&self) -> Duration {
        self.shared.workload(&self.name).map(|w| w.header_timeout).unwrap_or(Duration::from_secs(10))
    }

    async fn handle(&self, request: hyper::Request<Incoming>, conn: Arc<ConnectionInfo>) -> hyper::Response<ProxyBody> {
        // The workload is looked up per request: after a reload, new requests
        // use the new snapshot while this one finishes on the old.
        match self.shared.workload(&self.name) {
            Some(workload) => pipeline::handle(&workload, request, &conn, &self.shared.metrics).await,
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

    fn header_timeout(&self) -> Duration {
        Duration::from_secs(10)
    }

    async fn handle(&self, request: hyper::Request<Incoming>, _conn: Arc<ConnectionInfo>) -> hyper::Response<ProxyBody> {
        crate::admin::respond(request.uri().path(), &self.shared)
    }
}
