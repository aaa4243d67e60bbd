//! The one thing a full-access request names in its path (an email, a
//! webhook, a suppression entry), parsed once with the permission checked
//! before it: [`Named`] for reads and changes that carry a body of their
//! own, [`Action`] for a `POST` whose body must be empty (`{}`).

use crate::auth::FullAccess;
use crate::body::{email_id, expect_empty_object, RawBody};
use crate::error::ApiError;
use crate::suppression_view::route_ref;
use crate::webhook_view::webhook_id;
use crate::ApiState;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use mailqueue_core::suppression::SuppressionRef;
use mailqueue_core::{EmailId, FieldError, WebhookId};

/// What a path segment names, parsed with the error its route answers.
pub trait PathName: Sized + Send {
    fn parse(raw: &str) -> Result<Self, ApiError>;
}

impl PathName for EmailId {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        email_id(raw)
    }
}

impl PathName for WebhookId {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        webhook_id(raw)
    }
}

impl PathName for SuppressionRef {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        route_ref(raw)
    }
}

/// A full-access request about `id`, as its path spells it (`raw`).
pub struct Named<T> {
    pub state: ApiState,
    pub id: T,
    pub raw: String,
}

impl<T: PathName> FromRequestParts<ApiState> for Named<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        FullAccess::from_request_parts(parts, state).await?;
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::NotFound(e.body_text()))?;
        Ok(Self {
            state: state.clone(),
            id: T::parse(&raw)?,
            raw,
        })
    }
}

impl<T> Named<T> {
    /// Resend's Python SDK repeats the path's id in the body (as `field`);
    /// it must name the same thing.
    pub fn same_as_body(&self, field: &str, in_body: Option<&str>) -> Result<(), ApiError> {
        match in_body {
            Some(id) if id != self.raw => Err(ApiError::Validation(FieldError::invalid(
                field,
                format!("`{field}` in the body differs from the id in the path."),
            ))),
            _ => Ok(()),
        }
    }
}

/// A full-access `POST` about `id` whose body must be empty or `{}`.
pub struct Action<T>(pub Named<T>);

impl<T: PathName> FromRequest<ApiState> for Action<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let named = Named::from_request_parts(&mut parts, state).await?;
        let RawBody(body) = RawBody::from_request(Request::from_parts(parts, body), state).await?;
        expect_empty_object(&body)?;
        Ok(Self(named))
    }
}

impl<T> std::ops::Deref for Action<T> {
    type Target = Named<T>;

    fn deref(&self) -> &Named<T> {
        &self.0
    }
}
