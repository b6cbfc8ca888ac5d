//! `POST /api/models`: a signed model artifact uploaded as the raw body, registered by the backend as
//! `llmctl register` registers one, under the principal of the token that sent it.
//!
//! The head is checked before any body byte is read ([`Event::BodyAdmission`](crate::Event::BodyAdmission)):
//! a valid token (401), the admin capability that `llmctl register` needs (403), `Content-Type:
//! application/octet-stream` (415). Only then is the body, up to [`Limits::max_upload_bytes`](crate::Limits),
//! buffered and handed to [`Backend::register_model`](super::Backend::register_model).

use alloc::string::String;

use serde_json::Value;
use sis_shell::{codes, Capabilities};

use crate::request::Request;
use crate::response::Response;
use crate::token::TokenInfo;

/// The content type an artifact must be sent with.
pub const MODEL_CONTENT_TYPE: &str = "application/octet-stream";
/// What a token's role must hold to upload a model: what `llmctl register` needs.
pub const UPLOAD_CAPABILITY: Capabilities = Capabilities::ADMIN;

/// The backend's answer to an uploaded artifact.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelReply {
    /// Verified and registered: the JSON object of the registered model (answered with 201).
    Registered(Value),
    /// Refused, nothing kept but the refusal's audit entry: the refusal's stable code and its message (answered
    /// with the status [`refusal_status`] gives the code).
    Refused {
        /// The stable code (`digest-mismatch`, `version-exists`, ...).
        code: String,
        /// What went wrong, for a person.
        message: String,
    },
}

/// The status of a refused upload, from the refusal's code: 409 `version-exists` (the name and version are
/// registered already), 413 `model-too-large` (over the token's model size limit), 507 `registry-full`,
/// `registry-no-room` and `out-of-memory` (the registry cannot keep it), 503 `bad-trust-argument` (the kernel
/// trusts no key), 403 `permission-denied`; 422 for every other code: the artifact itself is refused
/// (`digest-mismatch`, `signature-invalid`, `unknown-key`, `truncated`, `bad-magic`, ...).
pub fn refusal_status(code: &str) -> u16 {
    match code {
        "version-exists" => 409,
        "model-too-large" => 413,
        "registry-full" | "registry-no-room" | "out-of-memory" => 507,
        "bad-trust-argument" => 503,
        codes::PERMISSION_DENIED => 403,
        _ => 422,
    }
}

/// The checks of an upload's head, after its token was verified: the capability (403), then the content type
/// (415).
pub(super) fn check_head(token: &TokenInfo, request: &Request) -> Result<(), Response> {
    if !token.role.capabilities().contains(UPLOAD_CAPABILITY) {
        return Err(Response::error(
            403,
            codes::PERMISSION_DENIED,
            "uploading a model needs the admin capability (as llmctl register does)",
        ));
    }
    let content_type = request.header("content-type").map(|value| value.split(';').next().unwrap_or("").trim());
    if !content_type.is_some_and(|value| value.eq_ignore_ascii_case(MODEL_CONTENT_TYPE)) {
        return Err(Response::error(
            415,
            "unsupported-media-type",
            "send the artifact's bytes as the body with Content-Type: application/octet-stream",
        ));
    }
    Ok(())
}

/// The answer to an upload: 201 with the registered model, or the refusal's status with its code.
pub(super) fn response(reply: ModelReply) -> Response {
    match reply {
        ModelReply::Registered(model) => Response::json(201, &model),
        ModelReply::Refused { code, message } => Response::error(refusal_status(&code), &code, &message),
    }
}
