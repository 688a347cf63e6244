//! Errors of API handlers and how they are sent: a status code and an
//! [`ErrorBody`](crate::api::ErrorBody).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use berth_engine::containers::ContainersError;

use crate::api::ErrorBody;

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    exit_code: Option<u8>,
}

impl ApiError {
    /// The request itself is wrong (400).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            exit_code: None,
        }
    }

    /// The daemon failed while doing the work (500).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            exit_code: None,
        }
    }
}

impl From<ContainersError> for ApiError {
    fn from(e: ContainersError) -> ApiError {
        let status = status_of(&e);
        ApiError {
            status,
            message: chain(&e),
            exit_code: Some(e.exit_code()),
        }
    }
}

use berth_engine::error_chain as chain;

/// The HTTP status of a container or network failure: the caller's mistake (4xx) or the
/// daemon's (5xx).
fn status_of(e: &ContainersError) -> StatusCode {
    use berth_engine::containers::ContainersError as E;
    use berth_engine::containers::NetError as N;
    match e {
        E::NotFound(_) | E::ImageNotFound(_) | E::Net(N::NoSuchNetwork(_)) => StatusCode::NOT_FOUND,
        E::NameInUse { .. }
        | E::Running(_)
        | E::NotRunning(_)
        | E::PrimaryNetwork { .. }
        | E::NoBridge { .. }
        | E::AlreadyConnected { .. }
        | E::NotConnected { .. }
        | E::Net(
            N::NetworkExists(_)
            | N::NetworkInUse { .. }
            | N::AlreadyAttached { .. }
            | N::NotAttached { .. },
        ) => StatusCode::CONFLICT,
        E::Ambiguous(_)
        | E::InvalidReference { .. }
        | E::InvalidName(_)
        | E::Spec(_)
        | E::Limits(_)
        | E::Port(_)
        | E::Net(N::InvalidName(_)) => StatusCode::BAD_REQUEST,
        E::Runtime(berth_runtime::RuntimeError::Setup(s)) if s.exit_code() != 125 => {
            StatusCode::BAD_REQUEST
        }
        E::Cleanup { cause, .. } => status_of(cause),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<berth_engine::EngineError> for ApiError {
    fn from(e: berth_engine::EngineError) -> ApiError {
        ApiError::internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!("{}", self.message);
        }
        (
            self.status,
            Json(ErrorBody {
                message: self.message,
                exit_code: self.exit_code,
            }),
        )
            .into_response()
    }
}

/// The answer to any route that does not exist.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("no such route: {}", uri.path()),
        exit_code: None,
    }
}

/// The answer to a route that exists, called with a method it does not take.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{method} is not allowed on {}", uri.path()),
        exit_code: None,
    }
}
