//! `accord.v1.EventService`.

use super::operation::{operation, serve};
use super::pb::event_service_server::EventService;
use super::{Api, convert, pb};
use crate::domain::event::{Subscription, SubscriptionId};
use crate::service::{EventPage, EventRequest, NewSubscription, Page, PageRequest};

/// The EventService adapter.
#[derive(Debug, Clone)]
pub struct EventApi(pub Api);

serve!(EventService, EventApi {
    create_subscription => CreateSubscription,
    get_subscription => GetSubscription,
    list_subscriptions => ListSubscriptions,
    delete_subscription => DeleteSubscription,
    list_events => ListEvents,
});

operation! {
    CreateSubscription: "EventService"/"CreateSubscription", Member,
    pb::CreateSubscriptionRequest => pb::CreateSubscriptionResponse,
    input(request, _) -> NewSubscription { convert::create_subscription(request) },
    run(services, call, new) -> Subscription { services.create_subscription(call, new).await },
    render(subscription, _call) {
        pb::CreateSubscriptionResponse {
            subscription: Some(convert::subscription_out(subscription)),
        }
    },
}

operation! {
    GetSubscription: "EventService"/"GetSubscription", Member,
    pb::GetSubscriptionRequest => pb::GetSubscriptionResponse,
    input(request, _) -> SubscriptionId { convert::subscription_name(&request.name) },
    run(services, call, id) -> Subscription { services.get_subscription(call, &id).await },
    render(subscription, _call) {
        pb::GetSubscriptionResponse { subscription: Some(convert::subscription_out(subscription)) }
    },
}

operation! {
    ListSubscriptions: "EventService"/"ListSubscriptions", Member,
    pb::ListSubscriptionsRequest => pb::ListSubscriptionsResponse,
    input(request, _) -> PageRequest { convert::list_subscriptions(request) },
    run(services, call, page) -> Page<Subscription> {
        services.list_subscriptions(call, &page).await
    },
    render(page, _call) {
        pb::ListSubscriptionsResponse {
            subscriptions: page.items.into_iter().map(convert::subscription_out).collect(),
            next_page_token: page.next_token,
        }
    },
}

operation! {
    DeleteSubscription: "EventService"/"DeleteSubscription", Member,
    pb::DeleteSubscriptionRequest => pb::DeleteSubscriptionResponse,
    input(request, _) -> SubscriptionId { convert::subscription_name(&request.name) },
    run(services, call, id) -> Subscription { services.delete_subscription(call, &id).await },
    render(subscription, _call) {
        pb::DeleteSubscriptionResponse {
            subscription: Some(convert::subscription_out(subscription)),
        }
    },
}

operation! {
    ListEvents: "EventService"/"ListEvents", Member,
    pb::ListEventsRequest => pb::ListEventsResponse,
    input(request, _) -> EventRequest { convert::list_events(request) },
    run(services, call, request) -> EventPage { services.list_events(call, &request).await },
    render(page, _call) {
        pb::ListEventsResponse {
            events: page.events.into_iter().map(convert::event_out).collect(),
            next_cursor: page.next_cursor,
        }
    },
}
