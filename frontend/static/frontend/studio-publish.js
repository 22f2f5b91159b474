// Studio: publish.
