"""The files a sweep writes: crash-safe writing and reading (``durable``) and the columns of its CSV files
(``columns``)."""
