-- Answers per question per day (UTC day the call started).
SELECT
  substr(started, 1, 10) AS day,
  position,
  question,
  count(*) AS answers,
  sum(CASE WHEN yes THEN 1 ELSE 0 END) AS yes,
  sum(CASE WHEN yes THEN 0 ELSE 1 END) AS no
FROM triage_answers
GROUP BY 1, 2, 3
ORDER BY 1, 2
