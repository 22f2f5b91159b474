// Show page: player.
