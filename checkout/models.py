"""Orders, stock holds, payments and webhook events (see DESIGN.md §6)."""
