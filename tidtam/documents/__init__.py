"""Documents: the official form as a printable page and PDF, the compilation as XLSX and CSV, with
their own templates and stylesheet beside them. May import app and everything below it."""
