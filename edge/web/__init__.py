"""The local web page: live view, the room's mood now and over the day, photos, the model.

``hub`` is the bridge between the frame loop and the server thread (the encoder thread
makes the JPEGs), ``app`` the HTTP routes, ``server`` runs them, ``history`` reads a
day's summaries back from the log files, ``report`` writes that day as one HTML file.
The page itself is plain HTML/CSS/JS in ``static/`` (uPlot vendored for the chart).
"""
