// The built-in corpus of examples/char_lm: about 55 KB of English prose and verse, so that the
// character-level language-model example trains on real text without downloading anything.
//
// Contents, all in the public domain (transcribed from memory, so small departures from the
// printed editions are possible; spelling modernised in places; ASCII only):
//   - the King James Bible (1611): Genesis 1-3, Psalms 1, 23, 100 and 121, Ecclesiastes 1-3
//     (selected verses of chapter 2), Matthew 5:3-16 and 6 (selected verses),
//     1 Corinthians 13;
//   - twenty sonnets of William Shakespeare (1609);
//   - the United States Declaration of Independence (1776), one passage left out;
//   - Abraham Lincoln's Gettysburg Address (1863) and the close of his Second Inaugural (1865);
//   - thirteen of Aesop's fables, retold in plain words for seqgrad; this retelling is dedicated to
//     the public domain.
// Each work is one raw string literal (each under 16 KB, a limit some compilers have), joined
// once on first use.
#include "builtin_corpus.hpp"

#include <string>

namespace seqgrad::examples {

namespace {

constexpr std::string_view pieces[] = {
    R"SG(THE FIRST BOOK OF MOSES, CALLED GENESIS

Chapter 1

In the beginning God created the heaven and the earth.
And the earth was without form, and void; and darkness was upon the face of the deep. And
the Spirit of God moved upon the face of the waters.
And God said, Let there be light: and there was light.
And God saw the light, that it was good: and God divided the light from the darkness.
And God called the light Day, and the darkness he called Night. And the evening and the
morning were the first day.
And God said, Let there be a firmament in the midst of the waters, and let it divide the
waters from the waters.
And God made the firmament, and divided the waters which were under the firmament from the
waters which were above the firmament: and it was so.
And God called the firmament Heaven. And the evening and the morning were the second day.
And God said, Let the waters under the heaven be gathered together unto one place, and let
the dry land appear: and it was so.
And God called the dry land Earth; and the gathering together of the waters called he Seas:
and God saw that it was good.
And God said, Let the earth bring forth grass, the herb yielding seed, and the fruit tree
yielding fruit after his kind, whose seed is in itself, upon the earth: and it was so.
And the earth brought forth grass, and herb yielding seed after his kind, and the tree
yielding fruit, whose seed was in itself, after his kind: and God saw that it was good.
And the evening and the morning were the third day.
And God said, Let there be lights in the firmament of the heaven to divide the day from the
night; and let them be for signs, and for seasons, and for days, and years:
And let them be for lights in the firmament of the heaven to give light upon the earth: and
it was so.
And God made two great lights; the greater light to rule the day, and the lesser light to
rule the night: he made the stars also.
And God set them in the firmament of the heaven to give light upon the earth,
And to rule over the day and over the night, and to divide the light from the darkness: and
God saw that it was good.
And the evening and the morning were the fourth day.
And God said, Let the waters bring forth abundantly the moving creature that hath life, and
fowl that may fly above the earth in the open firmament of heaven.
And God created great whales, and every living creature that moveth, which the waters
brought forth abundantly, after their kind, and every winged fowl after his kind: and God
saw that it was good.
And God blessed them, saying, Be fruitful, and multiply, and fill the waters in the seas,
and let fowl multiply in the earth.
And the evening and the morning were the fifth day.
And God said, Let the earth bring forth the living creature after his kind, cattle, and
creeping thing, and beast of the earth after his kind: and it was so.
And God made the beast of the earth after his kind, and cattle after their kind, and every
thing that creepeth upon the earth after his kind: and God saw that it was good.
And God said, Let us make man in our image, after our likeness: and let them have dominion
over the fish of the sea, and over the fowl of the air, and over the cattle, and over all
the earth, and over every creeping thing that creepeth upon the earth.
So God created man in his own image, in the image of God created he him; male and female
created he them.
And God blessed them, and God said unto them, Be fruitful, and multiply, and replenish the
earth, and subdue it: and have dominion over the fish of the sea, and over the fowl of the
air, and over every living thing that moveth upon the earth.
And God said, Behold, I have given you every herb bearing seed, which is upon the face of
all the earth, and every tree, in the which is the fruit of a tree yielding seed; to you it
shall be for meat.
And to every beast of the earth, and to every fowl of the air, and to every thing that
creepeth upon the earth, wherein there is life, I have given every green herb for meat: and
it was so.
And God saw every thing that he had made, and, behold, it was very good. And the evening and
the morning were the sixth day.

Chapter 2

Thus the heavens and the earth were finished, and all the host of them.
And on the seventh day God ended his work which he had made; and he rested on the seventh
day from all his work which he had made.
And God blessed the seventh day, and sanctified it: because that in it he had rested from
all his work which God created and made.
These are the generations of the heavens and of the earth when they were created, in the day
that the LORD God made the earth and the heavens,
And every plant of the field before it was in the earth, and every herb of the field before
it grew: for the LORD God had not caused it to rain upon the earth, and there was not a man
to till the ground.
But there went up a mist from the earth, and watered the whole face of the ground.
And the LORD God formed man of the dust of the ground, and breathed into his nostrils the
breath of life; and man became a living soul.
And the LORD God planted a garden eastward in Eden; and there he put the man whom he had
formed.
And out of the ground made the LORD God to grow every tree that is pleasant to the sight,
and good for food; the tree of life also in the midst of the garden, and the tree of
knowledge of good and evil.
And a river went out of Eden to water the garden; and from thence it was parted, and became
into four heads.
The name of the first is Pison: that is it which compasseth the whole land of Havilah, where
there is gold;
And the gold of that land is good: there is bdellium and the onyx stone.
And the name of the second river is Gihon: the same is it that compasseth the whole land of
Ethiopia.
And the name of the third river is Hiddekel: that is it which goeth toward the east of
Assyria. And the fourth river is Euphrates.
And the LORD God took the man, and put him into the garden of Eden to dress it and to keep
it.
And the LORD God commanded the man, saying, Of every tree of the garden thou mayest freely
eat:
But of the tree of the knowledge of good and evil, thou shalt not eat of it: for in the day
that thou eatest thereof thou shalt surely die.
And the LORD God said, It is not good that the man should be alone; I will make him an help
meet for him.
And out of the ground the LORD God formed every beast of the field, and every fowl of the
air; and brought them unto Adam to see what he would call them: and whatsoever Adam called
every living creature, that was the name thereof.
And Adam gave names to all cattle, and to the fowl of the air, and to every beast of the
field; but for Adam there was not found an help meet for him.
And the LORD God caused a deep sleep to fall upon Adam, and he slept: and he took one of his
ribs, and closed up the flesh instead thereof;
And the rib, which the LORD God had taken from man, made he a woman, and brought her unto
the man.
And Adam said, This is now bone of my bones, and flesh of my flesh: she shall be called
Woman, because she was taken out of Man.
Therefore shall a man leave his father and his mother, and shall cleave unto his wife: and
they shall be one flesh.
And they were both naked, the man and his wife, and were not ashamed.

Chapter 3

Now the serpent was more subtil than any beast of the field which the LORD God had made. And
he said unto the woman, Yea, hath God said, Ye shall not eat of every tree of the garden?
And the woman said unto the serpent, We may eat of the fruit of the trees of the garden:
But of the fruit of the tree which is in the midst of the garden, God hath said, Ye shall
not eat of it, neither shall ye touch it, lest ye die.
And the serpent said unto the woman, Ye shall not surely die:
For God doth know that in the day ye eat thereof, then your eyes shall be opened, and ye
shall be as gods, knowing good and evil.
And when the woman saw that the tree was good for food, and that it was pleasant to the
eyes, and a tree to be desired to make one wise, she took of the fruit thereof, and did eat,
and gave also unto her husband with her; and he did eat.
And the eyes of them both were opened, and they knew that they were naked; and they sewed
fig leaves together, and made themselves aprons.
And they heard the voice of the LORD God walking in the garden in the cool of the day: and
Adam and his wife hid themselves from the presence of the LORD God amongst the trees of the
garden.
And the LORD God called unto Adam, and said unto him, Where art thou?
And he said, I heard thy voice in the garden, and I was afraid, because I was naked; and I
hid myself.
And he said, Who told thee that thou wast naked? Hast thou eaten of the tree, whereof I
commanded thee that thou shouldest not eat?
And the man said, The woman whom thou gavest to be with me, she gave me of the tree, and I
did eat.
And the LORD God said unto the woman, What is this that thou hast done? And the woman said,
The serpent beguiled me, and I did eat.
And the LORD God said unto the serpent, Because thou hast done this, thou art cursed above
all cattle, and above every beast of the field; upon thy belly shalt thou go, and dust shalt
thou eat all the days of thy life:
And I will put enmity between thee and the woman, and between thy seed and her seed; it
shall bruise thy head, and thou shalt bruise his heel.
Unto the woman he said, I will greatly multiply thy sorrow and thy conception; in sorrow
thou shalt bring forth children; and thy desire shall be to thy husband, and he shall rule
over thee.
And unto Adam he said, Because thou hast hearkened unto the voice of thy wife, and hast
eaten of the tree, of which I commanded thee, saying, Thou shalt not eat of it: cursed is
the ground for thy sake; in sorrow shalt thou eat of it all the days of thy life;
Thorns also and thistles shall it bring forth to thee; and thou shalt eat the herb of the
field;
In the sweat of thy face shalt thou eat bread, till thou return unto the ground; for out of
it wast thou taken: for dust thou art, and unto dust shalt thou return.
And Adam called his wife's name Eve; because she was the mother of all living.
Unto Adam also and to his wife did the LORD God make coats of skins, and clothed them.
And the LORD God said, Behold, the man is become as one of us, to know good and evil: and
now, lest he put forth his hand, and take also of the tree of life, and eat, and live for
ever:
Therefore the LORD God sent him forth from the garden of Eden, to till the ground from
whence he was taken.
So he drove out the man; and he placed at the east of the garden of Eden Cherubims, and a
flaming sword which turned every way, to keep the way of the tree of life.

)SG",
    R"SG(THE BOOK OF PSALMS

Psalm 1

Blessed is the man that walketh not in the counsel of the ungodly, nor standeth in the way
of sinners, nor sitteth in the seat of the scornful.
But his delight is in the law of the LORD; and in his law doth he meditate day and night.
And he shall be like a tree planted by the rivers of water, that bringeth forth his fruit in
his season; his leaf also shall not wither; and whatsoever he doeth shall prosper.
The ungodly are not so: but are like the chaff which the wind driveth away.
Therefore the ungodly shall not stand in the judgment, nor sinners in the congregation of
the righteous.
For the LORD knoweth the way of the righteous: but the way of the ungodly shall perish.

Psalm 23

The LORD is my shepherd; I shall not want.
He maketh me to lie down in green pastures: he leadeth me beside the still waters.
He restoreth my soul: he leadeth me in the paths of righteousness for his name's sake.
Yea, though I walk through the valley of the shadow of death, I will fear no evil: for thou
art with me; thy rod and thy staff they comfort me.
Thou preparest a table before me in the presence of mine enemies: thou anointest my head
with oil; my cup runneth over.
Surely goodness and mercy shall follow me all the days of my life: and I will dwell in the
house of the LORD for ever.

Psalm 100

Make a joyful noise unto the LORD, all ye lands.
Serve the LORD with gladness: come before his presence with singing.
Know ye that the LORD he is God: it is he that hath made us, and not we ourselves; we are
his people, and the sheep of his pasture.
Enter into his gates with thanksgiving, and into his courts with praise: be thankful unto
him, and bless his name.
For the LORD is good; his mercy is everlasting; and his truth endureth to all generations.

Psalm 121

I will lift up mine eyes unto the hills, from whence cometh my help.
My help cometh from the LORD, which made heaven and earth.
He will not suffer thy foot to be moved: he that keepeth thee will not slumber.
Behold, he that keepeth Israel shall neither slumber nor sleep.
The LORD is thy keeper: the LORD is thy shade upon thy right hand.
The sun shall not smite thee by day, nor the moon by night.
The LORD shall preserve thee from all evil: he shall preserve thy soul.
The LORD shall preserve thy going out and thy coming in from this time forth, and even for
evermore.

)SG",
    R"SG(ECCLESIASTES; OR, THE PREACHER

Chapter 1

The words of the Preacher, the son of David, king in Jerusalem.
Vanity of vanities, saith the Preacher, vanity of vanities; all is vanity.
What profit hath a man of all his labour which he taketh under the sun?
One generation passeth away, and another generation cometh: but the earth abideth for ever.
The sun also ariseth, and the sun goeth down, and hasteth to his place where he arose.
The wind goeth toward the south, and turneth about unto the north; it whirleth about
continually, and the wind returneth again according to his circuits.
All the rivers run into the sea; yet the sea is not full; unto the place from whence the
rivers come, thither they return again.
All things are full of labour; man cannot utter it: the eye is not satisfied with seeing,
nor the ear filled with hearing.
The thing that hath been, it is that which shall be; and that which is done is that which
shall be done: and there is no new thing under the sun.
Is there any thing whereof it may be said, See, this is new? it hath been already of old
time, which was before us.
There is no remembrance of former things; neither shall there be any remembrance of things
that are to come with those that shall come after.
I the Preacher was king over Israel in Jerusalem.
And I gave my heart to seek and search out by wisdom concerning all things that are done
under heaven: this sore travail hath God given to the sons of man to be exercised therewith.
I have seen all the works that are done under the sun; and, behold, all is vanity and
vexation of spirit.
That which is crooked cannot be made straight: and that which is wanting cannot be numbered.
I communed with mine own heart, saying, Lo, I am come to great estate, and have gotten more
wisdom than all they that have been before me in Jerusalem: yea, my heart had great
experience of wisdom and knowledge.
And I gave my heart to know wisdom, and to know madness and folly: I perceived that this
also is vexation of spirit.
For in much wisdom is much grief: and he that increaseth knowledge increaseth sorrow.

Chapter 2

I said in mine heart, Go to now, I will prove thee with mirth, therefore enjoy pleasure:
and, behold, this also is vanity.
I said of laughter, It is mad: and of mirth, What doeth it?
I sought in mine heart to give myself unto wine, yet acquainting mine heart with wisdom; and
to lay hold on folly, till I might see what was that good for the sons of men, which they
should do under the heaven all the days of their life.
I made me great works; I builded me houses; I planted me vineyards:
I made me gardens and orchards, and I planted trees in them of all kind of fruits:
I made me pools of water, to water therewith the wood that bringeth forth trees:
I got me servants and maidens, and had servants born in my house; also I had great
possessions of great and small cattle above all that were in Jerusalem before me:
I gathered me also silver and gold, and the peculiar treasure of kings and of the provinces:
I gat me men singers and women singers, and the delights of the sons of men, as musical
instruments, and that of all sorts.
So I was great, and increased more than all that were before me in Jerusalem: also my wisdom
remained with me.
And whatsoever mine eyes desired I kept not from them, I withheld not my heart from any joy;
for my heart rejoiced in all my labour: and this was my portion of all my labour.
Then I looked on all the works that my hands had wrought, and on the labour that I had
laboured to do: and, behold, all was vanity and vexation of spirit, and there was no profit
under the sun.
And I turned myself to behold wisdom, and madness, and folly: for what can the man do that
cometh after the king? even that which hath been already done.
Then I saw that wisdom excelleth folly, as far as light excelleth darkness.
The wise man's eyes are in his head; but the fool walketh in darkness: and I myself
perceived also that one event happeneth to them all.
Then said I in my heart, As it happeneth to the fool, so it happeneth even to me; and why
was I then more wise? Then I said in my heart, that this also is vanity.
For there is no remembrance of the wise more than of the fool for ever; seeing that which
now is in the days to come shall all be forgotten. And how dieth the wise man? as the fool.
Therefore I hated life; because the work that is wrought under the sun is grievous unto me:
for all is vanity and vexation of spirit.
Yea, I hated all my labour which I had taken under the sun: because I should leave it unto
the man that shall be after me.
And who knoweth whether he shall be a wise man or a fool? yet shall he have rule over all my
labour wherein I have laboured, and wherein I have shewed myself wise under the sun. This is
also vanity.
There is nothing better for a man, than that he should eat and drink, and that he should
make his soul enjoy good in his labour. This also I saw, that it was from the hand of God.

Chapter 3

To every thing there is a season, and a time to every purpose under the heaven:
A time to be born, and a time to die; a time to plant, and a time to pluck up that which is
planted;
A time to kill, and a time to heal; a time to break down, and a time to build up;
A time to weep, and a time to laugh; a time to mourn, and a time to dance;
A time to cast away stones, and a time to gather stones together; a time to embrace, and a
time to refrain from embracing;
A time to get, and a time to lose; a time to keep, and a time to cast away;
A time to rend, and a time to sew; a time to keep silence, and a time to speak;
A time to love, and a time to hate; a time of war, and a time of peace.
What profit hath he that worketh in that wherein he laboureth?
I have seen the travail, which God hath given to the sons of men to be exercised in it.
He hath made every thing beautiful in his time: also he hath set the world in their heart,
so that no man can find out the work that God maketh from the beginning to the end.
I know that there is no good in them, but for a man to rejoice, and to do good in his life.
And also that every man should eat and drink, and enjoy the good of all his labour, it is
the gift of God.
I know that, whatsoever God doeth, it shall be for ever: nothing can be put to it, nor any
thing taken from it: and God doeth it, that men should fear before him.
That which hath been is now; and that which is to be hath already been; and God requireth
that which is past.
And moreover I saw under the sun the place of judgment, that wickedness was there; and the
place of righteousness, that iniquity was there.
I said in mine heart, God shall judge the righteous and the wicked: for there is a time
there for every purpose and for every work.
For that which befalleth the sons of men befalleth beasts; even one thing befalleth them: as
the one dieth, so dieth the other; yea, they have all one breath; so that a man hath no
preeminence above a beast: for all is vanity.
All go unto one place; all are of the dust, and all turn to dust again.
Who knoweth the spirit of man that goeth upward, and the spirit of the beast that goeth
downward to the earth?
Wherefore I perceive that there is nothing better, than that a man should rejoice in his own
works; for that is his portion: for who shall bring him to see what shall be after him?

)SG",
    R"SG(THE GOSPEL ACCORDING TO SAINT MATTHEW

Chapter 5

Blessed are the poor in spirit: for theirs is the kingdom of heaven.
Blessed are they that mourn: for they shall be comforted.
Blessed are the meek: for they shall inherit the earth.
Blessed are they which do hunger and thirst after righteousness: for they shall be filled.
Blessed are the merciful: for they shall obtain mercy.
Blessed are the pure in heart: for they shall see God.
Blessed are the peacemakers: for they shall be called the children of God.
Blessed are they which are persecuted for righteousness' sake: for theirs is the kingdom of
heaven.
Blessed are ye, when men shall revile you, and persecute you, and shall say all manner of
evil against you falsely, for my sake.
Rejoice, and be exceeding glad: for great is your reward in heaven: for so persecuted they
the prophets which were before you.
Ye are the salt of the earth: but if the salt have lost his savour, wherewith shall it be
salted? it is thenceforth good for nothing, but to be cast out, and to be trodden under foot
of men.
Ye are the light of the world. A city that is set on an hill cannot be hid.
Neither do men light a candle, and put it under a bushel, but on a candlestick; and it
giveth light unto all that are in the house.
Let your light so shine before men, that they may see your good works, and glorify your
Father which is in heaven.

Chapter 6

Lay not up for yourselves treasures upon earth, where moth and rust doth corrupt, and where
thieves break through and steal:
But lay up for yourselves treasures in heaven, where neither moth nor rust doth corrupt, and
where thieves do not break through nor steal:
For where your treasure is, there will your heart be also.
Behold the fowls of the air: for they sow not, neither do they reap, nor gather into barns;
yet your heavenly Father feedeth them. Are ye not much better than they?
Which of you by taking thought can add one cubit unto his stature?
And why take ye thought for raiment? Consider the lilies of the field, how they grow; they
toil not, neither do they spin:
And yet I say unto you, That even Solomon in all his glory was not arrayed like one of
these.
Take therefore no thought for the morrow: for the morrow shall take thought for the things
of itself. Sufficient unto the day is the evil thereof.

THE FIRST EPISTLE OF PAUL THE APOSTLE TO THE CORINTHIANS

Chapter 13

Though I speak with the tongues of men and of angels, and have not charity, I am become as
sounding brass, or a tinkling cymbal.
And though I have the gift of prophecy, and understand all mysteries, and all knowledge; and
though I have all faith, so that I could remove mountains, and have not charity, I am
nothing.
And though I bestow all my goods to feed the poor, and though I give my body to be burned,
and have not charity, it profiteth me nothing.
Charity suffereth long, and is kind; charity envieth not; charity vaunteth not itself, is
not puffed up,
Doth not behave itself unseemly, seeketh not her own, is not easily provoked, thinketh no
evil;
Rejoiceth not in iniquity, but rejoiceth in the truth;
Beareth all things, believeth all things, hopeth all things, endureth all things.
Charity never faileth: but whether there be prophecies, they shall fail; whether there be
tongues, they shall cease; whether there be knowledge, it shall vanish away.
For we know in part, and we prophesy in part.
But when that which is perfect is come, then that which is in part shall be done away.
When I was a child, I spake as a child, I understood as a child, I thought as a child: but
when I became a man, I put away childish things.
For now we see through a glass, darkly; but then face to face: now I know in part; but then
shall I know even as also I am known.
And now abideth faith, hope, charity, these three; but the greatest of these is charity.

)SG",
    R"SG(SONNETS, BY WILLIAM SHAKESPEARE

I

From fairest creatures we desire increase,
That thereby beauty's rose might never die,
But as the riper should by time decease,
His tender heir might bear his memory:
But thou, contracted to thine own bright eyes,
Feed'st thy light's flame with self-substantial fuel,
Making a famine where abundance lies,
Thyself thy foe, to thy sweet self too cruel.
Thou that art now the world's fresh ornament
And only herald to the gaudy spring,
Within thine own bud buriest thy content
And, tender churl, mak'st waste in niggarding.
Pity the world, or else this glutton be,
To eat the world's due, by the grave and thee.

II

When forty winters shall besiege thy brow,
And dig deep trenches in thy beauty's field,
Thy youth's proud livery, so gazed on now,
Will be a tattered weed, of small worth held:
Then being asked where all thy beauty lies,
Where all the treasure of thy lusty days,
To say within thine own deep-sunken eyes
Were an all-eating shame and thriftless praise.
How much more praise deserved thy beauty's use,
If thou couldst answer, This fair child of mine
Shall sum my count, and make my old excuse,
Proving his beauty by succession thine!
This were to be new made when thou art old,
And see thy blood warm when thou feel'st it cold.

XII

When I do count the clock that tells the time,
And see the brave day sunk in hideous night;
When I behold the violet past prime,
And sable curls all silvered o'er with white;
When lofty trees I see barren of leaves,
Which erst from heat did canopy the herd,
And summer's green all girded up in sheaves,
Borne on the bier with white and bristly beard;
Then of thy beauty do I question make,
That thou among the wastes of time must go,
Since sweets and beauties do themselves forsake,
And die as fast as they see others grow;
And nothing 'gainst Time's scythe can make defence
Save breed, to brave him when he takes thee hence.

XV

When I consider every thing that grows
Holds in perfection but a little moment,
That this huge stage presenteth nought but shows
Whereon the stars in secret influence comment;
When I perceive that men as plants increase,
Cheered and checked even by the self-same sky,
Vaunt in their youthful sap, at height decrease,
And wear their brave state out of memory;
Then the conceit of this inconstant stay
Sets you most rich in youth before my sight,
Where wasteful Time debateth with Decay,
To change your day of youth to sullied night;
And all in war with Time for love of you,
As he takes from you, I engraft you new.

XVIII

Shall I compare thee to a summer's day?
Thou art more lovely and more temperate:
Rough winds do shake the darling buds of May,
And summer's lease hath all too short a date;
Sometime too hot the eye of heaven shines,
And often is his gold complexion dimmed;
And every fair from fair sometime declines,
By chance or nature's changing course untrimmed;
But thy eternal summer shall not fade,
Nor lose possession of that fair thou ow'st;
Nor shall Death brag thou wander'st in his shade,
When in eternal lines to time thou grow'st:
So long as men can breathe or eyes can see,
So long lives this, and this gives life to thee.

XXIX

When, in disgrace with fortune and men's eyes,
I all alone beweep my outcast state,
And trouble deaf heaven with my bootless cries,
And look upon myself and curse my fate,
Wishing me like to one more rich in hope,
Featured like him, like him with friends possessed,
Desiring this man's art and that man's scope,
With what I most enjoy contented least;
Yet in these thoughts myself almost despising,
Haply I think on thee, and then my state,
Like to the lark at break of day arising
From sullen earth, sings hymns at heaven's gate;
For thy sweet love remembered such wealth brings
That then I scorn to change my state with kings.

XXX

When to the sessions of sweet silent thought
I summon up remembrance of things past,
I sigh the lack of many a thing I sought,
And with old woes new wail my dear time's waste:
Then can I drown an eye, unused to flow,
For precious friends hid in death's dateless night,
And weep afresh love's long since cancelled woe,
And moan the expense of many a vanished sight:
Then can I grieve at grievances foregone,
And heavily from woe to woe tell o'er
The sad account of fore-bemoaned moan,
Which I new pay as if not paid before.
But if the while I think on thee, dear friend,
All losses are restored and sorrows end.

XXXIII

Full many a glorious morning have I seen
Flatter the mountain-tops with sovereign eye,
Kissing with golden face the meadows green,
Gilding pale streams with heavenly alchemy;
Anon permit the basest clouds to ride
With ugly rack on his celestial face,
And from the forlorn world his visage hide,
Stealing unseen to west with this disgrace:
Even so my sun one early morn did shine
With all-triumphant splendour on my brow;
But out, alack! he was but one hour mine;
The region cloud hath masked him from me now.
Yet him for this my love no whit disdaineth;
Suns of the world may stain when heaven's sun staineth.

LV

Not marble, nor the gilded monuments
Of princes, shall outlive this powerful rhyme;
But you shall shine more bright in these contents
Than unswept stone, besmeared with sluttish time.
When wasteful war shall statues overturn,
And broils root out the work of masonry,
Nor Mars his sword nor war's quick fire shall burn
The living record of your memory.
'Gainst death and all-oblivious enmity
Shall you pace forth; your praise shall still find room
Even in the eyes of all posterity
That wear this world out to the ending doom.
So, till the judgment that yourself arise,
You live in this, and dwell in lovers' eyes.

LX

Like as the waves make towards the pebbled shore,
So do our minutes hasten to their end;
Each changing place with that which goes before,
In sequent toil all forwards do contend.
Nativity, once in the main of light,
Crawls to maturity, wherewith being crowned,
Crooked eclipses 'gainst his glory fight,
And Time that gave doth now his gift confound.
Time doth transfix the flourish set on youth
And delves the parallels in beauty's brow,
Feeds on the rarities of nature's truth,
And nothing stands but for his scythe to mow:
And yet to times in hope my verse shall stand,
Praising thy worth, despite his cruel hand.

LXIV

When I have seen by Time's fell hand defaced
The rich proud cost of outworn buried age;
When sometime lofty towers I see down-razed,
And brass eternal slave to mortal rage;
When I have seen the hungry ocean gain
Advantage on the kingdom of the shore,
And the firm soil win of the watery main,
Increasing store with loss, and loss with store;
When I have seen such interchange of state,
Or state itself confounded to decay;
Ruin hath taught me thus to ruminate,
That Time will come and take my love away.
This thought is as a death, which cannot choose
But weep to have that which it fears to lose.

LXV

Since brass, nor stone, nor earth, nor boundless sea,
But sad mortality o'ersways their power,
How with this rage shall beauty hold a plea,
Whose action is no stronger than a flower?
O, how shall summer's honey breath hold out
Against the wrackful siege of battering days,
When rocks impregnable are not so stout,
Nor gates of steel so strong, but Time decays?
O fearful meditation! where, alack,
Shall Time's best jewel from Time's chest lie hid?
Or what strong hand can hold his swift foot back?
Or who his spoil of beauty can forbid?
O, none, unless this miracle have might,
That in black ink my love may still shine bright.

LXXI

No longer mourn for me when I am dead
Than you shall hear the surly sullen bell
Give warning to the world that I am fled
From this vile world, with vilest worms to dwell:
Nay, if you read this line, remember not
The hand that writ it; for I love you so,
That I in your sweet thoughts would be forgot,
If thinking on me then should make you woe.
O, if, I say, you look upon this verse
When I perhaps compounded am with clay,
Do not so much as my poor name rehearse,
But let your love even with my life decay;
Lest the wise world should look into your moan,
And mock you with me after I am gone.

LXXIII

That time of year thou mayst in me behold
When yellow leaves, or none, or few, do hang
Upon those boughs which shake against the cold,
Bare ruined choirs, where late the sweet birds sang.
In me thou see'st the twilight of such day
As after sunset fadeth in the west,
Which by and by black night doth take away,
Death's second self, that seals up all in rest.
In me thou see'st the glowing of such fire
That on the ashes of his youth doth lie,
As the death-bed whereon it must expire,
Consumed with that which it was nourished by.
This thou perceiv'st, which makes thy love more strong,
To love that well which thou must leave ere long.

XCVII

How like a winter hath my absence been
From thee, the pleasure of the fleeting year!
What freezings have I felt, what dark days seen!
What old December's bareness everywhere!
And yet this time removed was summer's time,
The teeming autumn, big with rich increase,
Bearing the wanton burden of the prime,
Like widowed wombs after their lords' decease:
Yet this abundant issue seemed to me
But hope of orphans and unfathered fruit;
For summer and his pleasures wait on thee,
And, thou away, the very birds are mute;
Or, if they sing, 'tis with so dull a cheer
That leaves look pale, dreading the winter's near.

CIV

To me, fair friend, you never can be old,
For as you were when first your eye I eyed,
Such seems your beauty still. Three winters cold
Have from the forests shook three summers' pride,
Three beauteous springs to yellow autumn turned
In process of the seasons have I seen,
Three April perfumes in three hot Junes burned,
Since first I saw you fresh, which yet are green.
Ah! yet doth beauty, like a dial-hand,
Steal from his figure and no pace perceived;
So your sweet hue, which methinks still doth stand,
Hath motion and mine eye may be deceived:
For fear of which, hear this, thou age unbred;
Ere you were born was beauty's summer dead.

CVI

When in the chronicle of wasted time
I see descriptions of the fairest wights,
And beauty making beautiful old rhyme
In praise of ladies dead and lovely knights,
Then, in the blazon of sweet beauty's best,
Of hand, of foot, of lip, of eye, of brow,
I see their antique pen would have expressed
Even such a beauty as you master now.
So all their praises are but prophecies
Of this our time, all you prefiguring;
And, for they looked but with divining eyes,
They had not skill enough your worth to sing:
For we, which now behold these present days,
Have eyes to wonder, but lack tongues to praise.

CXVI

Let me not to the marriage of true minds
Admit impediments. Love is not love
Which alters when it alteration finds,
Or bends with the remover to remove:
O no! it is an ever-fixed mark
That looks on tempests and is never shaken;
It is the star to every wandering bark,
Whose worth's unknown, although his height be taken.
Love's not Time's fool, though rosy lips and cheeks
Within his bending sickle's compass come;
Love alters not with his brief hours and weeks,
But bears it out even to the edge of doom.
If this be error and upon me proved,
I never writ, nor no man ever loved.

CXXX

My mistress' eyes are nothing like the sun;
Coral is far more red than her lips' red;
If snow be white, why then her breasts are dun;
If hairs be wires, black wires grow on her head.
I have seen roses damasked, red and white,
But no such roses see I in her cheeks;
And in some perfumes is there more delight
Than in the breath that from my mistress reeks.
I love to hear her speak, yet well I know
That music hath a far more pleasing sound;
I grant I never saw a goddess go;
My mistress, when she walks, treads on the ground:
And yet, by heaven, I think my love as rare
As any she belied with false compare.

CXLVI

Poor soul, the centre of my sinful earth,
Thrall to these rebel powers that thee array,
Why dost thou pine within and suffer dearth,
Painting thy outward walls so costly gay?
Why so large cost, having so short a lease,
Dost thou upon thy fading mansion spend?
Shall worms, inheritors of this excess,
Eat up thy charge? Is this thy body's end?
Then, soul, live thou upon thy servant's loss,
And let that pine to aggravate thy store;
Buy terms divine in selling hours of dross;
Within be fed, without be rich no more:
So shalt thou feed on Death, that feeds on men,
And Death once dead, there's no more dying then.

)SG",
    R"SG(THE DECLARATION OF INDEPENDENCE

In Congress, July 4, 1776.

The unanimous Declaration of the thirteen united States of America.

When in the Course of human events, it becomes necessary for one people to dissolve the
political bands which have connected them with another, and to assume among the powers of
the earth, the separate and equal station to which the Laws of Nature and of Nature's God
entitle them, a decent respect to the opinions of mankind requires that they should declare
the causes which impel them to the separation.

We hold these truths to be self-evident, that all men are created equal, that they are
endowed by their Creator with certain unalienable Rights, that among these are Life, Liberty
and the pursuit of Happiness. That to secure these rights, Governments are instituted among
Men, deriving their just powers from the consent of the governed, That whenever any Form of
Government becomes destructive of these ends, it is the Right of the People to alter or to
abolish it, and to institute new Government, laying its foundation on such principles and
organizing its powers in such form, as to them shall seem most likely to effect their Safety
and Happiness. Prudence, indeed, will dictate that Governments long established should not
be changed for light and transient causes; and accordingly all experience hath shewn, that
mankind are more disposed to suffer, while evils are sufferable, than to right themselves by
abolishing the forms to which they are accustomed. But when a long train of abuses and
usurpations, pursuing invariably the same Object evinces a design to reduce them under
absolute Despotism, it is their right, it is their duty, to throw off such Government, and
to provide new Guards for their future security. Such has been the patient sufferance of
these Colonies; and such is now the necessity which constrains them to alter their former
Systems of Government. The history of the present King of Great Britain is a history of
repeated injuries and usurpations, all having in direct object the establishment of an
absolute Tyranny over these States. To prove this, let Facts be submitted to a candid world.

He has refused his Assent to Laws, the most wholesome and necessary for the public good.

He has forbidden his Governors to pass Laws of immediate and pressing importance, unless
suspended in their operation till his Assent should be obtained; and when so suspended, he
has utterly neglected to attend to them.

He has refused to pass other Laws for the accommodation of large districts of people, unless
those people would relinquish the right of Representation in the Legislature, a right
inestimable to them and formidable to tyrants only.

He has called together legislative bodies at places unusual, uncomfortable, and distant from
the depository of their public Records, for the sole purpose of fatiguing them into
compliance with his measures.

He has dissolved Representative Houses repeatedly, for opposing with manly firmness his
invasions on the rights of the people.

He has refused for a long time, after such dissolutions, to cause others to be elected;
whereby the Legislative powers, incapable of Annihilation, have returned to the People at
large for their exercise; the State remaining in the mean time exposed to all the dangers of
invasion from without, and convulsions within.

He has endeavoured to prevent the population of these States; for that purpose obstructing
the Laws for Naturalization of Foreigners; refusing to pass others to encourage their
migrations hither, and raising the conditions of new Appropriations of Lands.

He has obstructed the Administration of Justice, by refusing his Assent to Laws for
establishing Judiciary powers.

He has made Judges dependent on his Will alone, for the tenure of their offices, and the
amount and payment of their salaries.

He has erected a multitude of New Offices, and sent hither swarms of Officers to harass our
people, and eat out their substance.

He has kept among us, in times of peace, Standing Armies without the Consent of our
legislatures.

He has affected to render the Military independent of and superior to the Civil power.

He has combined with others to subject us to a jurisdiction foreign to our constitution, and
unacknowledged by our laws; giving his Assent to their Acts of pretended Legislation:

For Quartering large bodies of armed troops among us:

For protecting them, by a mock Trial, from punishment for any Murders which they should
commit on the Inhabitants of these States:

For cutting off our Trade with all parts of the world:

For imposing Taxes on us without our Consent:

For depriving us in many cases, of the benefits of Trial by Jury:

For transporting us beyond Seas to be tried for pretended offences:

For abolishing the free System of English Laws in a neighbouring Province, establishing
therein an Arbitrary government, and enlarging its Boundaries so as to render it at once an
example and fit instrument for introducing the same absolute rule into these Colonies:

For taking away our Charters, abolishing our most valuable Laws, and altering fundamentally
the Forms of our Governments:

For suspending our own Legislatures, and declaring themselves invested with power to
legislate for us in all cases whatsoever.

He has abdicated Government here, by declaring us out of his Protection and waging War
against us.

He has plundered our seas, ravaged our Coasts, burnt our towns, and destroyed the lives of
our people.

He is at this time transporting large Armies of foreign Mercenaries to complete the works of
death, desolation and tyranny, already begun with circumstances of Cruelty and perfidy
scarcely paralleled in the most barbarous ages, and totally unworthy the Head of a civilized
nation.

He has constrained our fellow Citizens taken Captive on the high Seas to bear Arms against
their Country, to become the executioners of their friends and Brethren, or to fall
themselves by their Hands.

In every stage of these Oppressions We have Petitioned for Redress in the most humble terms:
Our repeated Petitions have been answered only by repeated injury. A Prince whose character
is thus marked by every act which may define a Tyrant, is unfit to be the ruler of a free
people.

Nor have We been wanting in attentions to our British brethren. We have warned them from
time to time of attempts by their legislature to extend an unwarrantable jurisdiction over
us. We have reminded them of the circumstances of our emigration and settlement here. We
have appealed to their native justice and magnanimity, and we have conjured them by the ties
of our common kindred to disavow these usurpations, which would inevitably interrupt our
connections and correspondence. They too have been deaf to the voice of justice and of
consanguinity. We must, therefore, acquiesce in the necessity, which denounces our
Separation, and hold them, as we hold the rest of mankind, Enemies in War, in Peace Friends.

We, therefore, the Representatives of the united States of America, in General Congress,
Assembled, appealing to the Supreme Judge of the world for the rectitude of our intentions,
do, in the Name, and by Authority of the good People of these Colonies, solemnly publish and
declare, That these United Colonies are, and of Right ought to be Free and Independent
States; that they are Absolved from all Allegiance to the British Crown, and that all
political connection between them and the State of Great Britain, is and ought to be totally
dissolved; and that as Free and Independent States, they have full Power to levy War,
conclude Peace, contract Alliances, establish Commerce, and to do all other Acts and Things
which Independent States may of right do. And for the support of this Declaration, with a
firm reliance on the protection of divine Providence, we mutually pledge to each other our
Lives, our Fortunes and our sacred Honor.

THE GETTYSBURG ADDRESS, BY ABRAHAM LINCOLN

November 19, 1863.

Four score and seven years ago our fathers brought forth on this continent, a new nation,
conceived in Liberty, and dedicated to the proposition that all men are created equal.

Now we are engaged in a great civil war, testing whether that nation, or any nation so
conceived and so dedicated, can long endure. We are met on a great battle-field of that war.
We have come to dedicate a portion of that field, as a final resting place for those who
here gave their lives that that nation might live. It is altogether fitting and proper that
we should do this.

But, in a larger sense, we can not dedicate -- we can not consecrate -- we can not hallow --
this ground. The brave men, living and dead, who struggled here, have consecrated it, far
above our poor power to add or detract. The world will little note, nor long remember what
we say here, but it can never forget what they did here. It is for us the living, rather, to
be dedicated here to the unfinished work which they who fought here have thus far so nobly
advanced. It is rather for us to be here dedicated to the great task remaining before us --
that from these honored dead we take increased devotion to that cause for which they gave
the last full measure of devotion -- that we here highly resolve that these dead shall not
have died in vain -- that this nation, under God, shall have a new birth of freedom -- and
that government of the people, by the people, for the people, shall not perish from the
earth.

FROM THE SECOND INAUGURAL ADDRESS, BY ABRAHAM LINCOLN

March 4, 1865.

With malice toward none, with charity for all, with firmness in the right as God gives us to
see the right, let us strive on to finish the work we are in, to bind up the nation's
wounds, to care for him who shall have borne the battle and for his widow and his orphan, to
do all which may achieve and cherish a just and lasting peace among ourselves and with all
nations.

)SG",
    R"SG(FABLES OF AESOP, RETOLD PLAINLY

The Fox and the Grapes

A hungry Fox came into a vineyard on a hot afternoon and saw a bunch of ripe grapes hanging
from a high branch. They were purple and full of juice, and his mouth watered at the sight
of them. He drew back a few paces, ran, and jumped, but the grapes were just out of reach.
He tried again and again, until he was tired and his legs ached. At last he sat down, looked
up at the grapes with scorn, and said, "I thought those grapes were ripe, but I see now that
they are quite sour. I would not eat them if they were given to me." And he walked away with
his nose in the air.

It is easy to despise what you cannot have.

The Tortoise and the Hare

A Hare was always boasting of how fast he could run, and he laughed at the Tortoise for
being so slow. "Slow I may be," said the Tortoise, "but I will race you, and I will win."
The Hare thought this a fine joke and agreed at once. The Fox marked out the course and
started them off. The Hare ran so far ahead that he soon lost sight of the Tortoise, and,
thinking the race as good as won, he lay down under a tree to rest. He fell fast asleep. The
Tortoise plodded on and on, never stopping, never hurrying. When the Hare woke at last, he
ran to the finish as fast as his legs would carry him, but the Tortoise was already there,
resting comfortably and waiting for him.

Slow and steady wins the race.

The Boy Who Cried Wolf

A Shepherd Boy watched his flock near a village at the foot of a mountain. The days were
long and he grew bored, so one morning he ran toward the village shouting, "Wolf! Wolf! The
wolf is after the sheep!" The villagers dropped their work and came running with sticks and
stones, but there was no wolf, and the boy laughed at them. A few days later he did the same
thing again, and again the villagers came running, and again he laughed. Then one evening a
wolf really did come out of the forest and fell upon the sheep. The boy cried out in terror,
"Wolf! Wolf!" But the villagers thought he was playing his old trick, and nobody came. The
wolf took as many sheep as it pleased.

A liar will not be believed, even when he tells the truth.

The Ant and the Grasshopper

All summer long the Grasshopper sang and danced in the sunny fields, while the Ant worked
hard, carrying grains of corn to her nest one by one. "Why not come and sing with me," said
the Grasshopper, "instead of toiling in this heat?" "I am laying up food for the winter,"
said the Ant, "and you would do well to do the same." The Grasshopper only laughed. "Winter
is a long way off," he said, "and there is plenty of food today." When the winter came, the
fields were bare and white with snow. The Grasshopper, weak with hunger, came to the Ant and
begged for a little corn. "What did you do all summer?" asked the Ant. "I sang," said the
Grasshopper. "Then you may dance all winter," said the Ant, and she shut her door.

Work today for the needs of tomorrow.

The Lion and the Mouse

A Lion lay asleep in the forest when a little Mouse, running about, ran across his nose and
woke him. The Lion caught the Mouse under his great paw and opened his jaws to swallow him.
"Spare me, King of the forest," cried the Mouse, "and one day I will repay your kindness."
The Lion laughed to think that a mouse could ever help a lion, but he lifted his paw and let
him go. Some days later the Lion was caught in a net that hunters had stretched across a
path. He roared and struggled, but the ropes only held him tighter. The Mouse heard his
roaring, ran to the place, and gnawed through the ropes with his sharp little teeth until
the Lion was free. "You laughed at me," said the Mouse, "but now you see that even a mouse
can help a lion."

No act of kindness, however small, is ever wasted.

The Crow and the Pitcher

A Crow, half dead with thirst, found a pitcher that had once been full of water. But when
she put her beak into its mouth, she found that only a little water was left at the bottom,
and she could not reach it. She tried to tip the pitcher over, but it was too heavy for her.
Then she had an idea. She picked up a pebble and dropped it into the pitcher. Then she
dropped in another, and another, and another. With every pebble the water rose a little
higher, until at last it came near the top, and the Crow was able to drink her fill.

Little by little does the trick.

The Town Mouse and the Country Mouse

A Country Mouse once invited his cousin, who lived in the town, to visit him. He set before
him the best he had: beans, barley, a little cheese and a few dry crumbs. The Town Mouse ate
politely but turned up his nose. "How can you live on such plain food?" he said. "Come with
me to the town and I will show you how to live." So the two set off together and arrived at
the great house late at night. In the dining room they found the remains of a feast: cakes,
jellies, fine cheeses and all manner of good things. They had hardly begun to eat when the
door flew open and in came the servants with a lamp, and a pair of dogs barking loudly. The
two mice ran for their lives and hid in a hole in the wall, trembling. When all was quiet
again, the Country Mouse said, "Good-bye, cousin. You may keep your cakes and your dangers.
I would rather eat beans in peace than feast in fear."

Better a little in safety than plenty with fear.

The North Wind and the Sun

The North Wind and the Sun were arguing about which of them was the stronger, when they saw
a traveller walking along the road wrapped in a cloak. "Let us settle it this way," said the
Sun. "Whichever of us can make that man take off his cloak shall be called the stronger."
The North Wind agreed and went first. He blew a cold and furious blast, but the harder he
blew, the more tightly the traveller wrapped his cloak about him. At last the Wind gave up.
Then the Sun came out from behind a cloud and shone warmly upon the traveller. Soon the man
loosened his cloak, and before long he grew so warm that he took it off altogether and sat
down in the shade of a tree.

Gentleness often wins where force fails.

The Dog and His Reflection

A Dog was crossing a stream on a narrow plank, carrying in his mouth a piece of meat that he
had stolen from a butcher. Looking down into the water, he saw his own reflection, and he
thought it was another dog with a piece of meat twice as big as his own. He snapped at the
other dog to seize the larger piece, and as he opened his mouth his own meat fell into the
stream and was carried away. So he lost the meat he had, and gained nothing for his greed.

Grasp at the shadow and you may lose the substance.

The Goose That Laid the Golden Eggs

A farmer and his wife owned a goose that laid a golden egg every morning. They soon grew
rich, but the richer they became, the less patient they were. "If the goose lays a golden
egg every day," said the farmer, "she must be full of gold inside. Why should we wait? Let
us kill her and take all the gold at once." So they killed the goose and cut her open, and
found that she was just like any other goose inside. There was no gold at all, and from that
day on there were no more golden eggs.

Greed often overreaches itself.

The Fox and the Crow

A Crow had found a piece of cheese and flew with it to the branch of a tree. A Fox saw her
and wanted the cheese for himself. He sat down under the tree and called up to her, "Good
morning, Mistress Crow. How fine you look today! How glossy your feathers are, and how
bright your eyes! Surely a bird so beautiful must have a lovely voice. Will you not sing one
song for me, so that I may call you the Queen of Birds?" The Crow was so pleased by his
praise that she opened her beak to sing, and down fell the cheese. The Fox snapped it up.
"Thank you," he said. "That will do for my breakfast. In return for the cheese I will give
you a piece of advice: never trust a flatterer."

Beware of those who praise you for their own ends.

The Wolf in Sheep's Clothing

A Wolf found it hard to get near the sheep, because the shepherd and his dogs watched them
so closely. One day he found the skin of a sheep that had been thrown aside, and he put it
on over his own coat and walked in among the flock. The sheep took him for one of
themselves, and a lamb began to follow him about. That evening the shepherd wanted a sheep
for his supper, and in the dim light he chose the Wolf, and that was the end of him.

Appearances are often deceiving.

The Bundle of Sticks

An old man had several sons who were always quarrelling with one another. When he felt that
he was near the end of his life, he called them together and laid before them a bundle of
sticks tied tightly with a cord. "Break it," he said. Each son in turn tried with all his
strength, but none could break the bundle. Then the father untied the cord and gave each son
a single stick, and each broke his stick easily. "You see, my sons," he said, "if you stand
together, no one can harm you; but if you quarrel and go your separate ways, you will be
broken one by one."

In unity there is strength.
)SG",
};

}  // namespace

std::string_view builtin_corpus() {
    static const std::string text = [] {
        std::string all;
        for (auto p : pieces) all += p;
        return all;
    }();
    return text;
}

}  // namespace seqgrad::examples
