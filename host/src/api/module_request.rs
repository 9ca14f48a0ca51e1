//! One request a module answers, served without axum's router: on a module's own
//! listener (`module_listener_requests.rs`) and for the module routes of the admin API
//! that the audit trail does not record (`module_mount.rs`). A long poll or blocking
//! query parks for up to a minute, ten thousand at a time, so what a parked request
//! holds is kept to what it needs to answer.
//!
//! A request first goes through its preparation (the caller's: gate, body within
//! `server.body_limit_bytes`, route, the handler's start), boxed and freed as soon as the
//! handler runs. From then on it holds [`Parked`]: the module's pending reply, the
//! route's deadline (the only timer on the host's side), the module, and when it
//! started (for the metrics). Module answers pass as the module wrote them; the host's
//! own are its JSON errors.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::ApiError;
use super::modules::{call_timeout, deadline_missed, module_answer, route_call_timeout};
use crate::metrics::RequestTimer;
use crate::modules::{LoadedModule, Matched, ModuleCall, PendingReply};
use crate::state::AppState;

/// A module answer as it came, or one of the host's responses.
pub type ModuleBody = Either<Full<Bytes>, axum::body::Body>;

type Preparing = Pin<Box<dyn Future<Output = Result<Parked, Response>> + Send>>;

pin_project! {
    /// A request for a module, from its head to its response.
    pub struct ModuleRequest {
        #[pin]
        stage: Stage,
    }
}

pin_project! {
    #[project = StageProj]
    enum Stage {
        Preparing { preparing: Preparing },
        Parked { #[pin] parked: Parked },
        Answered,
    }
}

impl ModuleRequest {
    /// A request that `preparing` gets to the module's handler, or answers itself.
    pub(super) fn new(preparing: impl Future<Output = Result<Parked, Response>> + Send + 'static) -> Self {
        Self { stage: Stage::Preparing { preparing: Box::pin(preparing) } }
    }
}

pin_project! {
    /// What a request holds while the module's handler runs.
    pub(super) struct Parked {
        reply: PendingReply,
        #[pin]
        deadline: Sleep,
        started: Instant,
        module: Arc<LoadedModule>,
        app: AppState,
        route_index: usize,
        timer: Option<RequestTimer>,
    }
}

impl Parked {
    /// Starts the module's handler for `matched` under the route's deadline.
    pub(super) fn start(app: AppState, module: Arc<LoadedModule>, matched: Matched, call: ModuleCall) -> Self {
        let timeout = call_timeout(&app, &module, &matched);
        let route_index = matched.index;
        let started = Instant::now();
        let reply = module.call(matched, call);
        let deadline = tokio::time::sleep(timeout);
        Self { reply, deadline, started, module, app, route_index, timer: None }
    }

    /// The HTTP request timer to finish with the answer's status.
    pub(super) fn timed(mut self, timer: Option<RequestTimer>) -> Self {
        self.timer = timer;
        self
    }

    fn poll_answer(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<ModuleBody>> {
        let this = self.project();
        let answer = if let Poll::Ready(reply) = Pin::new(this.reply).poll(cx) {
            this.app.metrics.module_request_done(&this.module.name, *this.started, reply.status);
            module_answer(this.module, *this.route_index, reply).map(Either::Left)
        } else if this.deadline.poll(cx).is_ready() {
            this.app.metrics.module_request_done(&this.module.name, *this.started, 504);
            // Recomputed rather than held: a parked request keeps what it needs to wait.
            let timeout = route_call_timeout(this.app, this.module, *this.route_index);
            deadline_missed(this.module, timeout).into_response().map(Either::Right)
        } else {
            return Poll::Pending;
        };
        if let Some(timer) = this.timer.take() {
            timer.finish(this.app, answer.status());
        }
        Poll::Ready(answer)
    }
}

impl Future for ModuleRequest {
    type Output = Result<Response<ModuleBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut stage = self.project().stage;
        if let StageProj::Preparing { preparing } = stage.as_mut().project() {
            match ready!(preparing.as_mut().poll(cx)) {
                Ok(parked) => stage.set(Stage::Parked { parked }),
                Err(response) => {
                    stage.set(Stage::Answered);
                    return Poll::Ready(Ok(response.map(Either::Right)));
                }
            }
        }
        let response = match stage.as_mut().project() {
            StageProj::Parked { parked } => ready!(parked.poll_answer(cx)),
            _ => ApiError::Internal("a module request was polled after its answer".into())
                .into_response()
                .map(Either::Right),
        };
        // Drops the module's finished future and the timer now, not with the connection.
        stage.set(Stage::Answered);
        Poll::Ready(Ok(response))
    }
}

/// The request's body, all of it, up to `limit` bytes.
pub(super) async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => {
            Err(ApiError::PayloadTooLarge("request body is over the limit (server.body_limit_bytes)".into()))
        }
        Err(e) => Err(ApiError::BadRequest(format!("cannot read the request body: {e}"))),
    }
}
