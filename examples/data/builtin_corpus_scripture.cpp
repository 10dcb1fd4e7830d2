// Part of the built-in corpus (builtin_corpus.cpp): the King James Bible passages. One raw string literal per work
// (each under 16 KB, a limit some compilers have).
#include "builtin_corpus.hpp"

namespace seqgrad::examples::detail {

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
};
}  // namespace

std::span<const std::string_view> corpus_scripture() { return pieces; }

}  // namespace seqgrad::examples::detail
