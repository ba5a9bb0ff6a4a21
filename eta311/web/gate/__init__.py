"""The gate: who may call (API keys), how fast and how much (usage plans), kept in Redis or one machine's files."""
