// Show page: room.
