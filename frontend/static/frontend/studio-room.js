// Studio: room.
