-- Demo data for `scripts/dev up` (applied only to an empty database):
-- 1,000 users and 10,000 markets (ids 1-10000) with a mix of statuses,
-- volumes, creators, end dates and creation times. Uses MariaDB's
-- sequence engine (seq_1_to_N).
INSERT INTO users (id, name, email)
SELECT seq, CONCAT('User ', seq), CONCAT('user', seq, '@example.org')
FROM seq_1_to_1000;

INSERT INTO markets (id, name, description, status, volume, creator_id, end_date, created_at, updated_at)
SELECT seq,
	CONCAT('Will event ', seq, ' happen by ', 2026 + seq % 4, '?'),
	CONCAT('Resolves YES if event ', seq, ' is reported by two independent sources before the end date.'),
	ELT(1 + seq % 3, 'active', 'closed', 'resolved'),
	ROUND((seq * 7919) % 1000000 / 3, 2),
	1 + seq % 1000,
	IF(seq % 5 = 0, NULL, TIMESTAMP('2027-01-01') + INTERVAL seq HOUR),
	TIMESTAMP('2026-01-01') + INTERVAL seq MINUTE,
	TIMESTAMP('2026-01-01') + INTERVAL seq MINUTE
FROM seq_1_to_10000;

-- Forty markets with real topics among the generated ones, for semantic
-- search (t/40-search.t ranks paraphrased questions against them).
UPDATE markets SET name = 'Will Bitcoin close above $150,000 before the end of 2027?', description = 'Resolves YES if the BTC/USD daily close on a major crypto exchange exceeds 150,000 US dollars at any point before 31 December 2027. Cryptocurrency price market.' WHERE id = 9001;
UPDATE markets SET name = 'Will a spot Ethereum ETF launch in the European Union in 2027?', description = 'Resolves YES if an exchange-traded fund holding Ether directly starts trading on an EU stock exchange during 2027.' WHERE id = 9002;
UPDATE markets SET name = 'Will the Federal Reserve cut interest rates at its March 2027 meeting?', description = 'Resolves YES if the FOMC lowers the federal funds target range at the March 2027 meeting. The Fed rate decision is announced after the meeting.' WHERE id = 9003;
UPDATE markets SET name = 'Will the US unemployment rate rise above 5% in 2027?', description = 'Resolves YES if any monthly jobs report from the Bureau of Labor Statistics shows the jobless rate above five percent during 2027.' WHERE id = 9004;
UPDATE markets SET name = 'Will a Democrat win the 2028 United States presidential election?', description = 'Resolves YES if the candidate of the Democratic Party wins the US presidency in the November 2028 election.' WHERE id = 9005;
UPDATE markets SET name = 'Will the United Kingdom hold a general election before 2029?', description = 'Resolves YES if voters in the UK go to the polls in a general election to the House of Commons before 1 January 2029.' WHERE id = 9006;
UPDATE markets SET name = 'Will Argentina''s annual inflation fall below 30% in 2027?', description = 'Resolves YES if the INDEC consumer price index shows year-over-year inflation in Argentina under thirty percent in any month of 2027.' WHERE id = 9007;
UPDATE markets SET name = 'Will SpaceX land an uncrewed Starship on Mars by 2029?', description = 'Resolves YES if a SpaceX Starship vehicle touches down intact on the surface of Mars before the end of 2029.' WHERE id = 9008;
UPDATE markets SET name = 'Will NASA''s Artemis astronauts land on the Moon by 2027?', description = 'Resolves YES if a crewed Artemis mission puts astronauts on the lunar surface before the end of 2027.' WHERE id = 9009;
UPDATE markets SET name = 'Will 2027 be the hottest year on record globally?', description = 'Resolves YES if NOAA or Copernicus reports 2027 as the warmest year ever measured for global average surface temperature.' WHERE id = 9010;
UPDATE markets SET name = 'Will Arctic sea ice extent fall below 3 million square kilometres?', description = 'Resolves YES if the NSIDC reports a daily Arctic sea ice minimum under three million km² in any summer melt season before 2030.' WHERE id = 9011;
UPDATE markets SET name = 'Will Brazil win the 2026 FIFA World Cup?', description = 'Resolves YES if the Brazil national football team wins the final of the 2026 World Cup in North America.' WHERE id = 9012;
UPDATE markets SET name = 'Will the Los Angeles Lakers win the 2027 NBA championship?', description = 'Resolves YES if the Lakers win the NBA Finals in 2027 and lift the basketball title.' WHERE id = 9013;
UPDATE markets SET name = 'Will Manchester City win the 2026-27 Premier League title?', description = 'Resolves YES if Manchester City finish first in the English Premier League football season 2026-27.' WHERE id = 9014;
UPDATE markets SET name = 'Will Novak Djokovic win another Grand Slam tennis title?', description = 'Resolves YES if Djokovic wins the men''s singles at the Australian Open, Roland Garros, Wimbledon or the US Open before 2028.' WHERE id = 9015;
UPDATE markets SET name = 'Will Apple release a foldable iPhone in 2027?', description = 'Resolves YES if Apple starts selling an iPhone with a folding screen during 2027.' WHERE id = 9016;
UPDATE markets SET name = 'Will OpenAI release GPT-6 before the end of 2027?', description = 'Resolves YES if OpenAI makes a model named GPT-6 publicly available before 31 December 2027. Artificial intelligence language model release.' WHERE id = 9017;
UPDATE markets SET name = 'Will Tesla launch a driverless robotaxi service in California?', description = 'Resolves YES if Tesla offers paid rides to the public in California in cars with no safety driver before 2028.' WHERE id = 9018;
UPDATE markets SET name = 'Will the WHO declare a new public health emergency of international concern in 2027?', description = 'Resolves YES if the World Health Organization declares a PHEIC for a new disease outbreak or pandemic during 2027.' WHERE id = 9019;
UPDATE markets SET name = 'Will US measles cases exceed 2,000 in 2027?', description = 'Resolves YES if the CDC reports more than two thousand confirmed measles infections in the United States for 2027.' WHERE id = 9020;
UPDATE markets SET name = 'Will Brent crude oil trade above $100 a barrel in 2027?', description = 'Resolves YES if the front-month Brent crude futures price settles above 100 dollars per barrel on any day of 2027.' WHERE id = 9021;
UPDATE markets SET name = 'Will gold trade above $4,000 an ounce in 2027?', description = 'Resolves YES if the spot price of gold exceeds 4,000 US dollars per troy ounce at any time during 2027.' WHERE id = 9022;
UPDATE markets SET name = 'Will the euro fall to parity with the US dollar in 2027?', description = 'Resolves YES if the EUR/USD exchange rate trades at or below 1.00 on any day of 2027.' WHERE id = 9023;
UPDATE markets SET name = 'Will Netflix report more than 350 million subscribers?', description = 'Resolves YES if a Netflix quarterly earnings report shows over 350 million paid memberships for its streaming service before 2028.' WHERE id = 9024;
UPDATE markets SET name = 'Will Taylor Swift release a new studio album in 2027?', description = 'Resolves YES if Taylor Swift releases a new original studio album (not a re-recording) during 2027.' WHERE id = 9025;
UPDATE markets SET name = 'Will a streaming service film win the Oscar for Best Picture in 2027?', description = 'Resolves YES if the Academy Award for Best Picture at the 2027 ceremony goes to a movie released by Netflix, Apple, Amazon or another streaming service.' WHERE id = 9026;
UPDATE markets SET name = 'Will Canadian home prices fall 10% from their peak by 2027?', description = 'Resolves YES if the national average house price in Canada reported by CREA is at least ten percent below its previous peak during 2027. Housing market crash.' WHERE id = 9027;
UPDATE markets SET name = 'Will the Bank of Japan raise its policy rate above 1% in 2027?', description = 'Resolves YES if the Bank of Japan sets its short-term policy interest rate above one percent at any meeting in 2027.' WHERE id = 9028;
UPDATE markets SET name = 'Will India''s GDP grow more than 7% in fiscal year 2027?', description = 'Resolves YES if official statistics show India''s real gross domestic product growth above seven percent for the 2026-27 fiscal year.' WHERE id = 9029;
UPDATE markets SET name = 'Will China land astronauts on the Moon before 2030?', description = 'Resolves YES if a Chinese crewed mission lands taikonauts on the lunar surface before 1 January 2030.' WHERE id = 9030;
UPDATE markets SET name = 'Will electric cars make up more than half of new car sales in Germany in 2027?', description = 'Resolves YES if battery electric vehicles exceed 50 percent of new passenger car registrations in Germany for the full year 2027.' WHERE id = 9031;
UPDATE markets SET name = 'Will a magnitude 8 earthquake strike California before 2030?', description = 'Resolves YES if the USGS records an earthquake of magnitude 8.0 or greater with its epicentre in California before 2030.' WHERE id = 9032;
UPDATE markets SET name = 'Will a Category 5 hurricane make landfall in Florida in 2027?', description = 'Resolves YES if the National Hurricane Center reports a hurricane making landfall in Florida at Category 5 strength during the 2027 season.' WHERE id = 9033;
UPDATE markets SET name = 'Will Amazon announce another stock split before 2028?', description = 'Resolves YES if Amazon.com Inc. announces a forward split of its shares before 1 January 2028.' WHERE id = 9034;
UPDATE markets SET name = 'Will the US federal government shut down in 2027?', description = 'Resolves YES if a lapse in appropriations causes a shutdown of the United States federal government during 2027.' WHERE id = 9035;
UPDATE markets SET name = 'Will Russia and Ukraine sign a ceasefire agreement in 2027?', description = 'Resolves YES if the governments of Russia and Ukraine both sign a ceasefire or armistice agreement ending hostilities during 2027. War and peace talks.' WHERE id = 9036;
UPDATE markets SET name = 'Will driverless trucks haul freight on Texas highways without a safety driver?', description = 'Resolves YES if an autonomous trucking company runs commercial freight routes in Texas with no human on board before 2028.' WHERE id = 9037;
UPDATE markets SET name = 'Will a fusion power plant deliver net electricity to the grid by 2030?', description = 'Resolves YES if a nuclear fusion reactor supplies more electricity to the power grid than it draws, before 2030.' WHERE id = 9038;
UPDATE markets SET name = 'Will Gukesh keep the World Chess Championship title?', description = 'Resolves YES if Gukesh Dommaraju wins his next World Chess Championship match and remains world champion.' WHERE id = 9039;
UPDATE markets SET name = 'Will the Eiffel Tower close to visitors for more than a week in 2027?', description = 'Resolves YES if the Eiffel Tower in Paris is closed to the public for more than seven consecutive days during 2027, for strikes, repairs or any other reason.' WHERE id = 9040;
