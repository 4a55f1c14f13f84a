//! Where MCP touches the request path. The pipeline calls this module at three
//! points, and nothing else of MCP, so a reader of the plain proxy can skip it:
//! - [`Message::new`] and, only for a chain that decides on MCP calls,
//!   [`Message::read_first`]: before the inbound chain;
//! - [`decide`]: after the chain admitted the caller — the message is read (if
//!   it was not), checked, and each call decided by the authorizers;
//! - [`respond`]: a list's answer filtered to what the caller may use, and
//!   the server's own stream kept free of answers ([`server_stream`]).
//!
//! It stands in `proxy/`, not `mcp/`: it is the pipeline's, and so the rest
//! of `mcp` knows nothing of the proxy.
//!
//! Why the message is read after the chain by default: a caller without
//! credentials must not hold a connection or memory with a slow body. The
//! chain decides on the headers; only an authenticator that imports
//! `request.mcp-calls` makes the gateway read first, and then the bytes held
//! until the decision are bounded per workload and per connection
//! ([`super::body_read`]).

use super::body_read::{self, Budgets, Held, ReadError};
use super::chain::Allowed;
use super::error::GatewayError;
use super::server::ConnectionInfo;
use super::workload::{McpSettings, Workload};
use crate::body::{ProxyBody, full};
use crate::mcp::authorize::Refusal;
use crate::mcp::filter::ListFilter;
use crate::mcp::lists::{ListRequest, list_kind};
use crate::mcp::{message, server_stream};
use crate::runtime::bindings::mcp::McpCall;
use crate::runtime::request::RequestData;
use bytes::Bytes;
use http::{HeaderMap, Method, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::sync::Arc;

/// A request's body as the MCP stage sees it.
pub struct Message {
    state: State,
}

enum State {
    /// Not an MCP message (another workload, or a GET): streamed upstream, capped.
    Stream(Incoming),
    /// An MCP POST whose message is not read yet.
    Unread(Incoming),
    /// Read and parsed; forwarded as these bytes.
    Read(Bytes),
    /// Not acceptable. Refused after the inbound chain, so that a caller
    /// without credentials learns nothing but 401.
    Refused(GatewayError),
}

impl Message {
    pub fn new(workload: &Workload, method: &Method, body: Incoming, carries_body: bool) -> Message {
        let state = match &workload.mcp {
            Some(_) if method == Method::POST => State::Unread(body),
            // A message in a GET or DELETE body would reach the server unread.
            Some(_) if carries_body => State::Refused(GatewayError::BadMcpMessage("only a POST may carry an MCP message")),
            _ => State::Stream(body),
        };
        Message { state }
    }

    /// Reads the message before the inbound chain decides, only for a chain
    /// with an authenticator that reads MCP calls (nothing otherwise). The bytes count against the
    /// workload's and the connection's budgets until the returned [`Held`] is
    /// dropped, which the pipeline does once the chain has decided. A body that
    /// is too slow, or a spent budget, is answered at once (408, 503): it
    /// concerns the connection, not the message, and no component should wait for it.
    pub async fn read_first<'a>(
        &mut self,
        workload: &'a Workload,
        headers: &HeaderMap,
        conn: &'a ConnectionInfo,
    ) -> Result<(Vec<McpCall>, Option<Held<'a>>), GatewayError> {
        let reads_first = matches!(self.state, State::Unread(_)) && workload.inbound.reads_mcp_calls();
        let Some(mcp) = workload.mcp.as_ref().filter(|_| reads_first) else {
            return Ok((Vec::new(), None));
        };
        let mut held = Held::new(Budgets { workload: &mcp.held_before_decision, connection: &conn.held_before_decision });
        let calls = self.read(workload, mcp, headers, Some(&mut held)).await?;
        Ok((calls, Some(held)))
    }

    /// Reads, parses and checks the message: its calls, or none if it is
    /// refused (after the chain). Only a slow body or a spent budget is an
    /// error now.
    async fn read(&mut self, workload: &Workload, mcp: &McpSettings, headers: &HeaderMap, held: Option<&mut Held<'_>>) -> Result<Vec<McpCall>, GatewayError> {
        let State::Unread(body) = std::mem::replace(&mut self.state, State::Read(Bytes::new())) else {
            return Ok(Vec::new());
        };
        let limit = mcp.max_message_bytes.min(workload.max_body_bytes as usize);
        let read = match body_read::read_whole(body, limit, workload.body_pace, held).await {
            Err(ReadError::TimedOut) => return Err(GatewayError::BodyTimeout),
            Err(ReadError::Busy) => return Err(GatewayError::BodyBudgetSpent),
            Err(ReadError::TooLarge) => Err(GatewayError::McpMessageTooLarge),
            Err(ReadError::Broken) => Err(GatewayError::BadRequest("the body could not be read")),
            Ok(bytes) => Ok(bytes),
        };
        let parsed = read.and_then(|bytes| {
            let mut calls = message::parse(&bytes).map_err(|e| GatewayError::BadMcpMessage(e.describe()))?;
            message::check_headers(headers, &calls).map_err(|e| GatewayError::BadMcpMessage(e.describe()))?;
            mcp.tools.fill(&mut calls);
            Ok((bytes, calls))
        });
        Ok(match parsed {
            Ok((bytes, calls)) => {
                self.state = State::Read(bytes);
                calls
            }
            Err(error) => {
                self.state = State::Refused(error);
                Vec::new()
            }
        })
    }

    /// The body toward the upstream: the message as read, or the stream capped
    /// at `limit`. A refused message is its refusal; an MCP message that was
    /// never read is refused too, so a path that skipped [`decide`] fails closed.
    pub fn into_body(self, limit: u64) -> Result<UpstreamBody, GatewayError> {
        match self.state {
            // A stream can be sent twice only when it is empty.
            State::Stream(body) => {
                let again = hyper::body::Body::is_end_stream(&body).then(Bytes::new);
                Ok(UpstreamBody { body: Limited::new(body, limit as usize).boxed(), again })
            }
            State::Read(bytes) => Ok(UpstreamBody { body: full(bytes.clone()), again: Some(bytes) }),
            State::Refused(error) => Err(error),
            State::Unread(_) => Err(GatewayError::BadMcpMessage("the message was not read")),
        }
    }
}

/// The body toward the upstream, and its bytes when it can be sent a second
/// time (a read MCP message, or no body): an injector that renews a refused
/// credential (`retry`) gets one more attempt only then.
pub struct UpstreamBody {
    pub body: ProxyBody,
    pub again: Option<Bytes>,
}

/// After the inbound chain admitted the caller: reads the message (if the
/// chain did not need it first), then asks the authorizers about each call as
/// the caller the chain established. Gives back the request view, the body
/// toward the upstream, and the filter a list's answer goes through. Not an
/// MCP workload: the view and the capped body, as they are.
pub async fn decide(
    workload: &Workload,
    message: Message,
    view: Arc<RequestData>,
    allowed: &Allowed,
) -> Result<(RequestData, UpstreamBody, Answer), GatewayError> {
    let Some(mcp) = &workload.mcp else {
        return Ok((RequestData::unshare(view), message.into_body(workload.max_body_bytes)?, Answer::Pass));
    };
    // Boxed, so that the plain proxy's request future does not carry (and copy) the MCP stage's.
    Box::pin(decide_mcp(workload, mcp, message, view, allowed)).await
}

async fn decide_mcp(
    workload: &Workload,
    mcp: &McpSettings,
    mut message: Message,
    mut view: Arc<RequestData>,
    allowed: &Allowed,
) -> Result<(RequestData, UpstreamBody, Answer), GatewayError> {
    if matches!(message.state, State::Unread(_)) {
        let headers = std::mem::take(&mut Arc::make_mut(&mut view).headers);
        let calls = message.read(workload, mcp, &headers, None).await?;
        let view = Arc::make_mut(&mut view);
        (view.headers, view.mcp_calls) = (headers, calls);
    }
    let body = message.into_body(workload.max_body_bytes)?;
    if mcp.authorizers.plugins.is_empty() {
        return Ok((RequestData::unshare(view), body, Answer::Pass));
    }
    // A list in a batch could not be told from the batch's other answers.
    if view.mcp_calls.len() > 1 && view.mcp_calls.iter().any(|c| list_kind(&c.method).is_some()) {
        return Err(GatewayError::BadMcpMessage("a list method cannot be sent in a batch on this workload"));
    }
    mcp.authorizers.decide(&view, allowed.identity.as_ref(), &workload.name).await.map_err(|refusal| refused(workload, refusal))?;
    let list_filter = ListRequest::of(&view.mcp_calls).map(|list| ListFilter {
        list,
        authorizers: mcp.authorizers.clone(),
        request: view.clone(),
        identity: allowed.identity.clone(),
        workload: workload.name.clone(),
        tools: mcp.tools.clone(),
    });
    let mut view = RequestData::unshare(view);
    // A resumed stream (`Last-Event-ID`) would replay answers, lists
    // included, that were never filtered; a compressed list cannot be read.
    view.headers.remove("last-event-id");
    if list_filter.is_some() {
        view.headers.remove(http::header::ACCEPT_ENCODING);
    }
    let answer = match list_filter {
        Some(filter) => Answer::List(Box::new(filter)),
        None if view.method == Method::GET => Answer::ServerStream(workload.name.clone()),
        None => Answer::Pass,
    };
    Ok((view, body, answer))
}

/// What happens to the upstream's answer on its way back.
pub enum Answer {
    /// Passed on as it is.
    Pass,
    /// A list: only what the caller may use comes back.
    List(Box<ListFilter>),
    /// The server's own stream on a workload with authorizers: no answer on it.
    ServerStream(Arc<str>),
}

/// A list comes back with only what the caller may use; the server's own
/// stream, with no answer on it.
pub async fn respond(answer: Answer, response: Response<ProxyBody>) -> Result<Response<ProxyBody>, GatewayError> {
    match answer {
        Answer::Pass => Ok(response),
        Answer::List(filter) => Box::pin(filter.apply(response)).await.map_err(|_| GatewayError::ListUnfilterable),
        Answer::ServerStream(workload) => Ok(server_stream::guard(response, workload)),
    }
}

/// An authorizer's refusal as the client's answer.
fn refused(workload: &Workload, refusal: Refusal) -> GatewayError {
    match refusal {
        Refusal::Denied { id, reason } => GatewayError::Forbidden { id, reason },
        Refusal::StepUp { scopes } => {
            GatewayError::InsufficientScope { scopes, resource_metadata: workload.protected_resource.as_ref().map(|r| r.url.clone()) }
        }
        Refusal::Failed { component, fault } => GatewayError::component_failed(&component, fault),
    }
}
