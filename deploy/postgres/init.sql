-- First start of the compose PostgreSQL (an empty data volume): the conversations' database next to
-- the backend's (POSTGRES_DB=loan_assistant). Rasa creates its tables itself.
CREATE DATABASE rasa_tracker;
