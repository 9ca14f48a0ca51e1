//! One request on a module's own listener, served without axum's router: a long poll
//! or blocking query parks here for up to a minute, ten thousand at a time, so what a
//! parked request holds is kept to what it needs to answer.
//!
//! A request first goes through its preparation (read the body within
//! `server.body_limit_bytes`, match the module's route, check the host's token unless
//! the route is public, start the module's handler), boxed and freed as soon as the
//! handler runs. From then on it holds [`Parked`]: the module's pending reply, the
//! route's deadline (the only timer on the host's side), the module, and when it
//! started (for the module-request metrics). Errors are the host's JSON errors (404,
//! 405, 413, 401, 503, 504), module answers pass as the module wrote them.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, Response};
use http_body::Body as _;
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::ApiError;
use super::modules::{call_timeout, deadline_missed, module_answer, module_call};
use crate::modules::{LoadedModule, Miss, PendingReply, Via};
use crate::state::AppState;

/// A module answer as it came, or one of the host's (JSON) errors.
pub type ListenerBody = Either<Full<Bytes>, axum::body::Body>;

/// The request handler of `module`'s listener.
pub fn service(
    app: AppState,
    module: String,
) -> impl Fn(Request<Incoming>) -> ListenerCall + Clone + Send + Sync + 'static {
    let module: Arc<str> = module.into();
    move |request| ListenerCall {
        stage: Stage::Preparing { preparing: Box::pin(prepare(app.clone(), Arc::clone(&module), request)) },
    }
}

pin_project! {
    /// A request on a module's listener, from its head to its response.
    pub struct ListenerCall {
        #[pin]
        stage: Stage,
    }
}

type Preparing = Pin<Box<dyn Future<Output = Result<Parked, ApiError>> + Send>>;

pin_project! {
    #[project = StageProj]
    enum Stage {
        Preparing { preparing: Preparing },
        Parked { #[pin] parked: Parked },
        Answered,
    }
}

pin_project! {
    /// What a request holds while the module's handler runs.
    struct Parked {
        reply: PendingReply,
        #[pin]
        deadline: Sleep,
        timeout: Duration,
        started: Instant,
        module: Arc<LoadedModule>,
        app: AppState,
        method: Method,
        route_index: usize,
    }
}

impl Future for ListenerCall {
    type Output = Result<Response<ListenerBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut stage = self.project().stage;
        if let StageProj::Preparing { preparing } = stage.as_mut().project() {
            match ready!(preparing.as_mut().poll(cx)) {
                Ok(parked) => stage.set(Stage::Parked { parked }),
                Err(e) => {
                    stage.set(Stage::Answered);
                    return Poll::Ready(Ok(e.into_response().map(Either::Right)));
                }
            }
        }
        let response = match stage.as_mut().project() {
            StageProj::Parked { parked } => ready!(parked.poll_answer(cx)),
            _ => ApiError::Internal("a listener request was polled after its answer".into())
                .into_response()
                .map(Either::Right),
        };
        // Drops the module's finished future and the timer now, not with the connection.
        stage.set(Stage::Answered);
        Poll::Ready(Ok(response))
    }
}

impl Parked {
    fn poll_answer(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<ListenerBody>> {
        let this = self.project();
        if let Poll::Ready(reply) = Pin::new(this.reply).poll(cx) {
            this.app.metrics.module_request_done(&this.module.name, *this.started, reply.status);
            let answer = module_answer(this.module, this.method.as_str(), *this.route_index, reply);
            return Poll::Ready(answer.map(Either::Left));
        }
        if this.deadline.poll(cx).is_ready() {
            this.app.metrics.module_request_done(&this.module.name, *this.started, 504);
            let missed = deadline_missed(this.module, *this.timeout).into_response();
            return Poll::Ready(missed.map(Either::Right));
        }
        Poll::Pending
    }
}

/// Reads the body, matches the route, checks the token, and starts the handler.
async fn prepare(app: AppState, name: Arc<str>, request: Request<Incoming>) -> Result<Parked, ApiError> {
    let (parts, body) = request.into_parts();
    // Before the route, as the admin API does: an over-limit body is a 413 anywhere.
    let body = read_body(body, app.config.server.body_limit_bytes).await?;
    let module = app.modules.table().modules.get(&*name).cloned().ok_or_else(|| {
        ApiError::Unavailable(format!("module {name} is not in service; this listener closes shortly"))
    })?;
    let path = percent_encoding::percent_decode_str(parts.uri.path())
        .decode_utf8()
        .map_err(|_| ApiError::BadRequest("the path is not valid UTF-8 once decoded".into()))?
        .into_owned();
    let method = parts.method.clone();
    let matched = module.match_route(method.as_str(), &path, Via::Listener).map_err(|miss| match miss {
        Miss::NoRoute => ApiError::NotFound(format!("no route {path}")),
        Miss::Method => ApiError::MethodNotAllowed(format!("{method} is not allowed on {path}")),
    })?;
    let user = user_of(&app, &module, matched.index, &parts).await?;
    let timeout = call_timeout(&app, &module, &matched);
    let route_index = matched.index;
    let started = Instant::now();
    let reply = module.call(matched, module_call(parts, path, Via::Listener, user, body));
    Ok(Parked { reply, deadline: tokio::time::sleep(timeout), timeout, started, module, app, method, route_index })
}

/// The request's body, all of it, up to `limit` bytes.
async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
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

/// The host user behind the request: required on the module's private routes; on a
/// public route a valid host token names the operator (as on the admin listener), any
/// other credentials are the module's to judge.
async fn user_of(
    app: &AppState,
    module: &LoadedModule,
    index: usize,
    parts: &Parts,
) -> Result<Option<String>, ApiError> {
    let token = super::guard::bearer_token_of(&parts.headers);
    if module.routes[index].public {
        return Ok(match token {
            Some(token) => app.auth.authenticate(&token).await.ok(),
            None => None,
        });
    }
    let token = token.ok_or_else(|| {
        ApiError::Unauthorized("this route needs Authorization: Bearer <token> of the Apollo host".into())
    })?;
    Ok(Some(app.auth.authenticate(&token).await?))
}
