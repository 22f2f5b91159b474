// Studio: orders.
