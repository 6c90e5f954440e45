//! Change notifications: agencies' subscriptions to events.

use super::paging::time_key;
use super::{Audited, Call, Page, PageRequest, ServiceError, Services};
use crate::domain::event::{Cohort, EventKind, Subscription, SubscriptionId};
use crate::domain::{AgencyCode, Purpose, RecordClassId, Role, SubjectId, Violations};
use crate::store::Write;

/// An agency's subscriptions: a page of those it made, and its default
/// one.
#[derive(Debug)]
pub struct SubscriptionList {
    pub page: Page<Subscription>,
    pub default: Subscription,
}

/// A subscription as asked for, before Accord names it.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub kinds: Vec<EventKind>,
    pub record_classes: Vec<RecordClassId>,
    pub purpose: Purpose,
    pub role: Role,
    pub cohort: Cohort,
}

/// Refuses a caller who does not hold `role`, the role a subscription
/// delivers for: managing a subscription needs it.
pub(super) fn require_subscription_role(call: &Call, role: &Role) -> Result<(), ServiceError> {
    if call.caller.has_role(role.as_str()) {
        return Ok(());
    }
    Err(ServiceError::denied(
        "ROLE_NOT_PERMITTED",
        format!(
            "a subscription for the {role} role can only be managed by a holder of that role, \
             which the caller is not",
            role = role.as_str()
        ),
    ))
}

/// The names an entry about `s` records: the subscription's, and those
/// of the subjects it lists, so that a subject access report shows who
/// asked to be told about the person.
fn named(s: &Subscription) -> Vec<String> {
    let mut names = vec![s.id.resource_name()];
    if let Cohort::Listed(subjects) = &s.cohort {
        names.extend(subjects.iter().map(SubjectId::resource_name));
    }
    names
}

impl Services {
    /// Subscribes the caller's agency to events, for a role the caller
    /// holds.
    pub async fn create_subscription(
        &self,
        call: &Call,
        new: NewSubscription,
    ) -> Result<Audited<Subscription>, ServiceError> {
        call.note_controller(call.caller.agency.as_str().to_owned());
        require_subscription_role(call, &new.role)?;
        let mut v = Violations::new();
        for (i, class) in new.record_classes.iter().enumerate() {
            if new.record_classes[..i].contains(class) {
                v.add(
                    format!("subscription.record_classes[{i}]"),
                    "is listed twice",
                );
            } else if self.store.record_class(class).await?.is_none() {
                v.add(
                    format!("subscription.record_classes[{i}]"),
                    format!("{} is not in the catalogue", class.resource_name()),
                );
            }
        }
        if !v.is_empty() {
            return Err(v.into());
        }
        let subscription = Subscription {
            id: SubscriptionId::generate(),
            agency: call.caller.agency.clone(),
            kinds: new.kinds,
            record_classes: new.record_classes,
            purpose: new.purpose,
            role: new.role,
            cohort: new.cohort,
            created_by: call.caller.principal.as_str().to_owned(),
            create_time: call.time,
            entry_index: 0,
        };
        call.note_records(named(&subscription));
        let receipt = self
            .commit_receipt(call, vec![Write::InsertSubscription(subscription.clone())])
            .await?;
        let subscription = Subscription {
            entry_index: receipt.entry().index,
            ..subscription
        };
        Ok(Audited::new(receipt, subscription))
    }

    /// One of the caller's agency's subscriptions; any other, deleted or
    /// never made, is not found alike.
    pub(super) async fn own_subscription(
        &self,
        call: &Call,
        id: &SubscriptionId,
    ) -> Result<Subscription, ServiceError> {
        call.note_records(vec![id.resource_name()]);
        call.note_controller(call.caller.agency.as_str().to_owned());
        self.subscription_of(&call.caller.agency, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(id.resource_name()))
    }

    /// `agency`'s subscription `id` (its default one included), unless it
    /// was deleted.
    pub(super) async fn subscription_of(
        &self,
        agency: &AgencyCode,
        id: &SubscriptionId,
    ) -> Result<Option<Subscription>, ServiceError> {
        if *id == SubscriptionId::default_for(agency) {
            let registered = self.store.agency(agency).await?;
            return Ok(registered.map(|a| Subscription::default_for(agency, a.create_time)));
        }
        Ok(self
            .store
            .subscription(id)
            .await?
            .filter(|s| s.agency == *agency))
    }

    /// Reads one of the caller's agency's subscriptions.
    pub async fn get_subscription(
        &self,
        call: &Call,
        id: &SubscriptionId,
    ) -> Result<Audited<Subscription>, ServiceError> {
        let subscription = self.own_subscription(call, id).await?;
        self.commit(call, vec![], subscription).await
    }

    /// Lists the caller's agency's subscriptions, oldest first, and its
    /// default one.
    pub async fn list_subscriptions(
        &self,
        call: &Call,
        req: &PageRequest,
    ) -> Result<Audited<SubscriptionList>, ServiceError> {
        call.note_controller(call.caller.agency.as_str().to_owned());
        let default = self
            .subscription_of(
                &call.caller.agency,
                &SubscriptionId::default_for(&call.caller.agency),
            )
            .await?
            .ok_or_else(|| ServiceError::NotFound(call.caller.agency.resource_name()))?;
        let paging = self.tokens.paging(call, "ListSubscriptions", req)?;
        let items = self
            .store
            .subscriptions_of(&call.caller.agency, paging.after_time()?, paging.size() + 1)
            .await?;
        let page = paging.page(items, |s| time_key(s.create_time, s.id.as_str()));
        call.note_records(page.items.iter().map(|s| s.id.resource_name()).collect());
        self.commit(call, vec![], SubscriptionList { page, default })
            .await
    }

    /// Ends one of the caller's agency's subscriptions, for a holder of
    /// its role.
    pub async fn delete_subscription(
        &self,
        call: &Call,
        id: &SubscriptionId,
    ) -> Result<Audited<Subscription>, ServiceError> {
        let subscription = self.own_subscription(call, id).await?;
        call.note_records(named(&subscription));
        require_subscription_role(call, &subscription.role)?;
        if subscription.is_default() {
            return Err(ServiceError::Precondition {
                code: "DEFAULT_SUBSCRIPTION",
                message: "an agency's default subscription (its reviews) cannot be deleted"
                    .to_owned(),
            });
        }
        let write = Write::DeleteSubscription {
            id: id.clone(),
            deleted_by: call.caller.principal.as_str().to_owned(),
            time: call.time,
        };
        self.commit(call, vec![write], subscription).await
    }
}
