-- GET /api/markets/search?q=...&limit=10 with a bearer token, cycling
-- through paraphrased questions about the seeded markets.
-- env: TOKEN
local queries = {
  "bitcoin above 150 thousand dollars", "fed rate cut in march", "democrat wins the presidency",
  "jobless rate over five percent", "hottest year on record", "lakers basketball title",
  "spacex starship on mars", "ceasefire between russia and ukraine", "foldable iphone",
  "gold price per ounce", "brent oil over 100 dollars", "world cup brazil",
  "netflix subscribers", "fusion power on the grid", "measles cases in the us",
  "euro dollar parity",
}
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
local i = 0
request = function()
  i = i % #queries + 1
  local q = queries[i]:gsub(" ", "%%20")
  return wrk.format("GET", "/api/markets/search?q=" .. q .. "&limit=10")
end
