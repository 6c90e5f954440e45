//! Consents across the proto boundary.

use chrono::{DateTime, Utc};

use super::enums::EnumError;
use super::{
    by_name, enums, instant, page_request, purpose_at, purpose_out, subject_name, timestamp,
};
use crate::api::pb;
use crate::domain::consent::{
    Channel, Consent, ConsentId, ConsentKind, ConsentScope, ConsentState,
};
use crate::domain::{AgencyCode, RecordClassId, SubjectId, Violations};
use crate::service::{NewConsent, PageRequest};

fn kind(value: i32) -> Result<ConsentKind, EnumError> {
    let name = enums::required::<pb::ConsentKind>(value)?.as_str_name();
    by_name(Some(name), "CONSENT_KIND_", ConsentKind::from_code).ok_or(EnumError::Unsupported(name))
}

fn channel(value: i32) -> Result<Channel, EnumError> {
    let name = enums::required::<pb::ConsentChannel>(value)?.as_str_name();
    by_name(Some(name), "CONSENT_CHANNEL_", Channel::from_code).ok_or(EnumError::Unsupported(name))
}

fn kind_out(k: ConsentKind) -> i32 {
    let value = match k {
        ConsentKind::Consent => pb::ConsentKind::Consent,
        ConsentKind::Objection => pb::ConsentKind::Objection,
    };
    value as i32
}

fn channel_out(c: Channel) -> i32 {
    let value = match c {
        Channel::FaceToFace => pb::ConsentChannel::FaceToFace,
        Channel::Telephone => pb::ConsentChannel::Telephone,
        Channel::Web => pb::ConsentChannel::Web,
        Channel::Post => pb::ConsentChannel::Post,
        Channel::Email => pb::ConsentChannel::Email,
    };
    value as i32
}

fn state_out(s: ConsentState) -> i32 {
    let value = match s {
        ConsentState::Pending => pb::ConsentState::Pending,
        ConsentState::Effective => pb::ConsentState::Effective,
        ConsentState::Lapsed => pb::ConsentState::Lapsed,
        ConsentState::Withdrawn => pb::ConsentState::Withdrawn,
    };
    value as i32
}

fn optional_time(
    t: Option<&prost_types::Timestamp>,
    field: &str,
    v: &mut Violations,
) -> Option<DateTime<Utc>> {
    let t = t?;
    let parsed = instant(t);
    if parsed.is_none() {
        v.add(field, "is not a valid instant");
    }
    parsed
}

/// The consent of a RecordConsent request.
pub fn record_consent(req: pb::RecordConsentRequest) -> Result<NewConsent, Violations> {
    let Some(c) = req.consent else {
        return Err(Violations::one("consent", "is required"));
    };
    let mut v = Violations::new();
    let subject = subject_name(&c.subject, "consent.subject", &mut v);
    let kind = v.check("consent.kind", kind(c.kind));
    let channel = v.check("consent.channel", channel(c.channel));
    let purposes = c
        .purposes
        .iter()
        .enumerate()
        .filter_map(|(i, p)| purpose_at(*p, &format!("consent.purposes[{i}]"), &mut v))
        .collect();
    let record_classes = c
        .record_classes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            v.check(
                &format!("consent.record_classes[{i}]"),
                RecordClassId::parse_name(r),
            )
        })
        .collect();
    let recipients = c
        .recipients
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            v.check(
                &format!("consent.recipients[{i}]"),
                AgencyCode::parse_name(a),
            )
        })
        .collect();
    let valid_from = optional_time(c.valid_from.as_ref(), "consent.valid_from", &mut v);
    let valid_until = optional_time(c.valid_until.as_ref(), "consent.valid_until", &mut v);
    v.into_result(|| {
        Some(NewConsent {
            subject: subject?,
            kind: kind?,
            scope: ConsentScope {
                purposes,
                record_classes,
                recipients,
            },
            channel: channel?,
            valid_from,
            valid_until,
            note: c.note,
        })
    })
}

/// The consent and reason of a WithdrawConsent request.
pub fn withdraw_consent(
    req: pb::WithdrawConsentRequest,
) -> Result<(ConsentId, String), Violations> {
    let mut v = Violations::new();
    let id = v.check("name", ConsentId::parse_name(&req.name));
    v.into_result(|| Some((id?, req.reason)))
}

/// The subject and page of a ListConsents request.
pub fn list_consents(req: pb::ListConsentsRequest) -> Result<(SubjectId, PageRequest), Violations> {
    let mut v = Violations::new();
    let subject = subject_name(&req.subject, "subject", &mut v);
    let page = page_request(req.page_size, req.page_token, &mut v);
    v.into_result(|| Some((subject?, page)))
}

/// The proto form of a consent as it stands at `now`.
pub fn consent_out(c: Consent, now: DateTime<Utc>) -> pb::Consent {
    let state = state_out(c.state_at(now));
    pb::Consent {
        name: c.id.resource_name(),
        subject: c.subject.resource_name(),
        kind: kind_out(c.kind),
        purposes: c
            .scope
            .purposes
            .into_iter()
            .map(|p| purpose_out(Some(p)) as i32)
            .collect(),
        record_classes: c
            .scope
            .record_classes
            .iter()
            .map(RecordClassId::resource_name)
            .collect(),
        recipients: c
            .scope
            .recipients
            .iter()
            .map(AgencyCode::resource_name)
            .collect(),
        channel: channel_out(c.channel),
        valid_from: Some(timestamp(c.valid_from)),
        valid_until: c.valid_until.map(timestamp),
        note: c.note,
        recorded_by: c.recorded_by.resource_name(),
        recorded_principal: c.recorded_principal,
        record_time: Some(timestamp(c.record_time)),
        state,
        withdrawal: c.withdrawal.map(|w| pb::ConsentWithdrawal {
            agency: w.agency.resource_name(),
            principal: w.principal,
            withdraw_time: Some(timestamp(w.time)),
            reason: w.reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_proto_enum_value_maps_to_a_domain_value_and_back() {
        for value in 1..=2 {
            assert_eq!(kind_out(kind(value).unwrap()), value);
        }
        for value in 1..=5 {
            assert_eq!(channel_out(channel(value).unwrap()), value);
        }
        assert!(kind(0).is_err());
        assert!(channel(0).is_err());
        assert!(channel(6).is_err());
    }
}
