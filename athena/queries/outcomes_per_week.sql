-- Calls per outcome per week (ISO weeks, from Monday; UTC day the call started).
SELECT
  CAST(CAST(date_trunc('week', CAST(substr(started, 1, 10) AS date)) AS date) AS varchar) AS week,
  outcome,
  count(*) AS calls
FROM triage_calls
GROUP BY 1, 2
ORDER BY 1, 2
