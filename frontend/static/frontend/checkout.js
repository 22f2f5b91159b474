// Show page: checkout.
