"""Every write of the checkout: orders and payments, flash sales, refunds."""

from checkout.services.auction_sales import auction_settle
from checkout.services.auctions import (
    BidPlaced,
    BidRequest,
    auction_bid,
    auction_bids,
    auction_buy_now,
    auction_cancel,
    auction_close,
    auction_close_due,
    auction_start,
)
from checkout.services.bag import (
    bag_checkout,
    bag_checkout_resume,
    bag_expire_due,
    bag_get,
    bag_json,
    bag_quote,
    bag_set_line,
)
from checkout.services.orders import (
    Buyer,
    PayResult,
    order_cancel,
    order_create,
    order_expire_due,
    order_mark_failed,
    order_mark_paid,
    order_pay,
    order_refresh,
    order_return_url,
    saved_card_remove,
)
from checkout.services.refunds import (
    order_refund,
    order_refunds_record,
    order_restock,
)
from checkout.services.sales import sale_close_due, sale_start

__all__ = [
    "BidPlaced",
    "BidRequest",
    "Buyer",
    "PayResult",
    "auction_bid",
    "auction_bids",
    "auction_buy_now",
    "auction_cancel",
    "auction_close",
    "auction_close_due",
    "auction_settle",
    "auction_start",
    "bag_checkout",
    "bag_checkout_resume",
    "bag_expire_due",
    "bag_get",
    "bag_json",
    "bag_quote",
    "bag_set_line",
    "order_cancel",
    "order_create",
    "order_expire_due",
    "order_mark_failed",
    "order_mark_paid",
    "order_pay",
    "order_refresh",
    "order_refund",
    "order_refunds_record",
    "order_restock",
    "order_return_url",
    "sale_close_due",
    "sale_start",
    "saved_card_remove",
]
