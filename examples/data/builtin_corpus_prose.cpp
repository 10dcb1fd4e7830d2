// Part of the built-in corpus (builtin_corpus.cpp): the Declaration of Independence, Lincoln and the fables. One raw string literal per work
// (each under 16 KB, a limit some compilers have).
#include "builtin_corpus.hpp"

namespace seqgrad::examples::detail {

namespace {
constexpr std::string_view pieces[] = {
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

std::span<const std::string_view> corpus_prose() { return pieces; }

}  // namespace seqgrad::examples::detail
