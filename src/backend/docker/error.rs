//! Mapping bollard errors to [`BackendError`] with the operation that failed.

use crate::backend::BackendError;

/// A failed API call. Transport-level failures mean the daemon went away.
pub(crate) fn api_error(what: &str, e: bollard::errors::Error) -> BackendError {
    use bollard::errors::Error as E;
    match e {
        E::HyperResponseError { .. }
        | E::HyperLegacyError { .. }
        | E::IOError { .. }
        | E::SocketNotFoundError(_)
        | E::RequestTimeoutError => BackendError::Unavailable(format!("{what}: {e}")),
        other => BackendError::Other(format!("{what}: {other}")),
    }
}

/// The HTTP status of a daemon error response, if it was one.
pub(crate) fn status_of(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}
