//! `accord.v1.EventService`.

use tokio_stream::wrappers::ReceiverStream;

use super::error::to_status;
use super::operation::{ServerStream, operation, serve};
use super::pb::event_service_server::EventService;
use super::{Api, convert, pb};
use crate::domain::event::{Subscription, SubscriptionId};
use crate::domain::review::{Review, ReviewId, ReviewOutcome};
use crate::service::{
    EventPage, EventRequest, EventWatch, NewSubscription, Page, PageRequest, SubscriptionList,
    WatchItem,
};

/// The stream of a watch.
type WatchStream = ServerStream<pb::WatchEventsResponse>;

/// How many messages may wait for a slow reader: with a page of events
/// being delivered, what one watcher holds in memory is bounded; a reader
/// further behind is caught up from storage.
const WATCH_BUFFER: usize = 16;

/// The method a watch's failure is reported for.
const WATCH_METHOD: &str = super::method!("EventService", "WatchEvents");

/// Streams `watch` until the client goes away or it fails.
fn watch_stream(mut watch: EventWatch) -> WatchStream {
    let (tx, rx) = tokio::sync::mpsc::channel(WATCH_BUFFER);
    tokio::spawn(async move {
        let _open = crate::monitor::EventStream::opened();
        loop {
            let item = tokio::select! {
                item = watch.next() => item,
                () = tx.closed() => return,
            };
            let messages = match item {
                Ok(WatchItem::Events(events)) => events
                    .into_iter()
                    .map(|e| pb::watch_events_response::Item::Event(convert::event_out(e)))
                    .collect(),
                Ok(WatchItem::Heartbeat { cursor, time }) => {
                    vec![pb::watch_events_response::Item::Heartbeat(pb::Heartbeat {
                        cursor,
                        time: Some(convert::timestamp(time)),
                    })]
                }
                Err(e) => {
                    tracing::warn!(error = %e, "an event stream ended");
                    let status = to_status(&e, watch.request_id(), WATCH_METHOD);
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            };
            for item in messages {
                let message = pb::WatchEventsResponse { item: Some(item) };
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
        }
    });
    ServerStream(Box::pin(ReceiverStream::new(rx)))
}

/// The EventService adapter.
#[derive(Debug, Clone)]
pub struct EventApi(pub Api);

serve!(EventService, EventApi {
    create_subscription => CreateSubscription,
    get_subscription => GetSubscription,
    list_subscriptions => ListSubscriptions,
    delete_subscription => DeleteSubscription,
    list_events => ListEvents,
    watch_events => WatchEvents,
    get_review => GetReview,
    list_reviews => ListReviews,
    acknowledge_review => AcknowledgeReview,
}
    type WatchEventsStream = WatchStream;
);

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
    input(request, _) -> SubscriptionId { convert::subscription_name("name", &request.name) },
    run(services, call, id) -> Subscription { services.get_subscription(call, &id).await },
    render(subscription, _call) {
        pb::GetSubscriptionResponse { subscription: Some(convert::subscription_out(subscription)) }
    },
}

operation! {
    ListSubscriptions: "EventService"/"ListSubscriptions", Member,
    pb::ListSubscriptionsRequest => pb::ListSubscriptionsResponse,
    input(request, _) -> PageRequest { convert::list_subscriptions(request) },
    run(services, call, page) -> SubscriptionList {
        services.list_subscriptions(call, &page).await
    },
    render(list, _call) {
        pb::ListSubscriptionsResponse {
            subscriptions: list.page.items.into_iter().map(convert::subscription_out).collect(),
            next_page_token: list.page.next_token,
            default_subscription: Some(convert::subscription_out(list.default)),
        }
    },
}

operation! {
    DeleteSubscription: "EventService"/"DeleteSubscription", Member,
    pb::DeleteSubscriptionRequest => pb::DeleteSubscriptionResponse,
    input(request, _) -> SubscriptionId { convert::subscription_name("name", &request.name) },
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

operation! {
    WatchEvents: "EventService"/"WatchEvents", Member,
    pb::WatchEventsRequest => WatchStream,
    input(request, _) -> (SubscriptionId, String) {
        convert::subscription_name("subscription", &request.subscription)
            .map(|id| (id, request.cursor))
    },
    run(services, call, (id, cursor)) -> EventWatch {
        services.watch_events(call, &id, &cursor).await
    },
    render(watch, _) { watch_stream(watch) },
}

operation! {
    GetReview: "EventService"/"GetReview", Member,
    pb::GetReviewRequest => pb::GetReviewResponse,
    input(request, _) -> ReviewId { convert::review_name("name", &request.name) },
    run(services, call, id) -> Review { services.get_review(call, &id).await },
    render(review, _call) {
        pb::GetReviewResponse { review: Some(convert::review_out(review)) }
    },
}

operation! {
    ListReviews: "EventService"/"ListReviews", Member,
    pb::ListReviewsRequest => pb::ListReviewsResponse,
    input(request, _) -> (bool, PageRequest) { convert::list_reviews(request) },
    run(services, call, (unacknowledged_only, page)) -> Page<Review> {
        services.list_reviews(call, unacknowledged_only, &page).await
    },
    render(page, _call) {
        pb::ListReviewsResponse {
            reviews: page.items.into_iter().map(convert::review_out).collect(),
            next_page_token: page.next_token,
        }
    },
}

operation! {
    AcknowledgeReview: "EventService"/"AcknowledgeReview", Member,
    pb::AcknowledgeReviewRequest => pb::AcknowledgeReviewResponse,
    input(request, _) -> (ReviewId, ReviewOutcome, String) { convert::acknowledge_review(request) },
    run(services, call, (id, outcome, note)) -> Review {
        services.acknowledge_review(call, &id, outcome, note).await
    },
    render(review, _call) {
        pb::AcknowledgeReviewResponse { review: Some(convert::review_out(review)) }
    },
}
